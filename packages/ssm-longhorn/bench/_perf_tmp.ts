import { scanForward, scanBackward } from '../src/scan.js';
import { crossEntropy } from '../src/ops.js';
import { Rng, defaultEngine, zeros } from '@saelab/core';
const B = 16, L = 256, d = 256, n = 16;
const rng = new Rng(1);
const f = (len: number, s = 1) => Float32Array.from({ length: len }, () => s * rng.normal());
const inp = { x: f(B * L * d), z: f(B * L * d), k: f(B * L * n, 0.3), q: f(B * L * n) };
for (let it = 0; it < 3; it++) {
  let t0 = performance.now();
  const { saved } = scanForward('longhorn-diag', { batch: B, seqLen: L, dInner: d, dState: n }, inp);
  const tf = performance.now() - t0;
  t0 = performance.now();
  scanBackward(inp, saved, inp.x);
  console.log('scan fwd', tf.toFixed(0), 'bwd', (performance.now() - t0).toFixed(0));
}
const e = await defaultEngine();
const a = zeros([4096, 128]); const w = zeros([4096, 128]);
for (let it = 0; it < 3; it++) {
  let t0 = performance.now();
  const lg = await e.gemm(a, w, { transB: true });
  const t1 = performance.now();
  const tg = new Int32Array(4096);
  crossEntropy(lg.data, tg, 4096, true);
  const t2 = performance.now();
  await e.gemm(lg, a, { transA: true }); await e.gemm(lg, w);
  console.log('head gemm', (t1 - t0).toFixed(0), 'ce', (t2 - t1).toFixed(0), 'bwd gemms', (performance.now() - t2).toFixed(0));
}
