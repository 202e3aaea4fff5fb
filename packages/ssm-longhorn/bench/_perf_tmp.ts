import { scanForward, scanBackward } from '../src/scan.js';
import { Rng } from '@saelab/core';
const B = 16, L = 256, d = 256, n = 16;
const rng = new Rng(1);
const f = (len: number, s = 1) => Float32Array.from({ length: len }, () => s * rng.normal());
const inp = { x: f(B * L * d), z: f(B * L * d), k: f(B * L * n, 0.3), q: f(B * L * n) };
for (let it = 0; it < 4; it++) {
  let t0 = performance.now();
  const { saved } = scanForward('longhorn-diag', { batch: B, seqLen: L, dInner: d, dState: n }, inp);
  const tf = performance.now() - t0;
  t0 = performance.now();
  scanBackward(inp, saved, inp.x);
  console.log('scan fwd', tf.toFixed(0), 'bwd', (performance.now() - t0).toFixed(0));
}
