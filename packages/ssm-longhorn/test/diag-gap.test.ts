import { describe, expect, it } from 'vitest';
import { type ScanShape, diagonalGap, scanForward } from '../src/index.js';
import { randomInputs } from './scan-reference.js';

describe('exact vs diagonal gap (diag-gap.ts)', () => {
  it('is zero for one-hot keys, where the diagonal update is exact', () => {
    const sh: ScanShape = { batch: 2, seqLen: 20, dInner: 3, dState: 4 };
    const inp = randomInputs(sh, 1, Float64Array);
    for (let bt = 0; bt < 40; bt++) {
      const j = bt % 4;
      for (let m = 0; m < 4; m++) inp.k[bt * 4 + m] = m === j ? 0.7 + 0.01 * bt : 0;
    }
    const s = diagonalGap(sh, inp, 'longhorn-diag');
    expect(s.steps).toBe(38);
    expect(s.relGap).toBeLessThan(1e-15);
    expect(s.outputGap).toBeLessThan(1e-12);
    expect(s.residualDiag).toBeCloseTo(s.residualExact, 12);
  });

  it('measures the output gap of the two trajectories the scan kernels produce, and the one-step gap by hand', () => {
    const sh: ScanShape = { batch: 2, seqLen: 15, dInner: 3, dState: 4 };
    const inp = randomInputs(sh, 2, Float64Array);
    const yd = scanForward('longhorn-diag', sh, inp).y;
    const ye = scanForward('longhorn-exact', sh, inp).y;
    let sum = 0;
    for (let bt = 0; bt < 30; bt++) {
      if (bt % 15 === 0) continue;
      let [dy, y] = [0, 0];
      for (let i = 0; i < 3; i++) {
        dy += (ye[bt * 3 + i]! - yd[bt * 3 + i]!) ** 2;
        y += yd[bt * 3 + i]! ** 2;
      }
      sum += Math.sqrt(dy / y);
    }
    const s = diagonalGap(sh, inp, 'longhorn-diag');
    expect(s.outputGap).toBeCloseTo(sum / 28, 10);
    expect(s.relGap).toBeGreaterThan(1e-3);

    // one channel, two steps: S_1 = ε_0 x_0 k_0; gap at t = 1 is ε_1 ‖k₁²⊙s − k₁ (k₁·s)‖ / ‖s‖
    const one: ScanShape = { batch: 1, seqLen: 2, dInner: 1, dState: 2 };
    const k = [0.5, -1, 2, 0.3];
    const [x, z] = [[1.5, -0.7], [0.2, -0.4]];
    const eps = (t: number) => 1 / (1 + Math.exp(-z[t]!) + k[2 * t]! ** 2 + k[2 * t + 1]! ** 2);
    const s1 = [eps(0) * x[0]! * k[0]!, eps(0) * x[0]! * k[1]!];
    const ks = k[2]! * s1[0]! + k[3]! * s1[1]!;
    const diff = [k[2]! ** 2 * s1[0]! - k[2]! * ks, k[3]! ** 2 * s1[1]! - k[3]! * ks].map((v) => eps(1) * v);
    const g = diagonalGap(one, { x: Float64Array.from(x), z: Float64Array.from(z), k: Float64Array.from(k), q: Float64Array.of(1, 1, 1, 1) }, 'longhorn-diag');
    expect(g.relGap).toBeCloseTo(Math.hypot(...diff) / Math.hypot(...s1), 12);
    // the implicit update's residual after the step: (x − k·s)/(1 + β‖k‖²), β = sigmoid(z)
    const beta1 = 1 / (1 + Math.exp(-z[1]!));
    const kk1 = k[2]! ** 2 + k[3]! ** 2;
    expect(g.residualExact).toBeCloseTo(Math.abs(x[1]! - ks) / (1 + beta1 * kk1) / Math.abs(x[1]!), 12);
    // the diagonal one's: S₁' k₁ − x₁ with S₁' = (1 − ε k₁²) ⊙ s + ε x₁ k₁
    const sd = [0, 1].map((j) => (1 - eps(1) * k[2 + j]! ** 2) * s1[j]! + eps(1) * x[1]! * k[2 + j]!);
    expect(g.residualDiag).toBeCloseTo(Math.abs(sd[0]! * k[2]! + sd[1]! * k[3]! - x[1]!) / Math.abs(x[1]!), 12);
  });
});
