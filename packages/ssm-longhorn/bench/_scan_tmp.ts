import { scanForward, scanBackward } from '../src/scan.js';
import { Rng } from '@saelab/core';
const B = 32, L = 64, d = 128, n = 16;
const rng = new Rng(1);
const f = (len: number, s = 1) => Float32Array.from({ length: len }, () => s * rng.normal());
const inp = { x: f(B * L * d), z: f(B * L * d), k: f(B * L * n, 0.3), q: f(B * L * n) };
let tf = 0, tb = 0;
for (let it = 0; it < 20; it++) {
  let c0 = process.cpuUsage();
  const { saved } = scanForward('longhorn-diag', { batch: B, seqLen: L, dInner: d, dState: n }, inp);
  let c1 = process.cpuUsage(c0);
  if (it >= 5) tf += c1.user / 1000;
  c0 = process.cpuUsage();
  scanBackward(inp, saved, inp.x);
  c1 = process.cpuUsage(c0);
  if (it >= 5) tb += c1.user / 1000;
}
console.log('cpu ms per call: fwd', (tf / 15).toFixed(1), 'bwd', (tb / 15).toFixed(1), 'ns/elem fwd', (tf / 15 * 1e6 / (B * L * d * n)).toFixed(2));
