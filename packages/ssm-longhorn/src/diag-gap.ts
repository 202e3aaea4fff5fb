/**
 * Exact vs diagonal Longhorn update, measured (issue 14, item 5; the reviewers asked whether the published diagonal
 * approximation keeps the online-learning reading of the state). For one layer's real scan inputs (x, z_β, k) it
 * runs, in float64, both recurrences on the same inputs and reports
 *  - the one-step gap from the same state: ‖(I − ε kkᵀ)S − (1 − ε k²) ⊙ S‖_F / ‖S‖_F, rows i with their own ε_i,
 *    S = S_{t−1} of the trajectory under the update the model was trained with (`along`);
 *  - the online-regression residual ‖S_t k_t − x_t‖ / ‖x_t‖ after each step, along each update's own trajectory
 *    (the exact implicit update solves min ‖S − S_{t−1}‖² + β‖S k − x‖², so its residual is (x − S_{t−1}k)/(1 + β‖k‖²));
 *  - the output gap ‖y^exact − y^diag‖ / ‖y^diag‖ of the two trajectories.
 * Averages are over time steps t ≥ 1 (S_0 = 0) and sequences: means of per-step ratios.
 */
import type { FloatArray, ScanShape } from './scan.js';

export interface DiagGapStats {
  /** Mean one-step relative gap ‖(I − εkkᵀ)S − (1 − εk²)⊙S‖ / ‖S‖ (S from the `along` trajectory). */
  relGap: number;
  /** Mean ‖S_t k_t − x_t‖ / ‖x_t‖ along the diagonal and the exact trajectory. */
  residualDiag: number;
  residualExact: number;
  /** Mean ‖y_exact − y_diag‖ / ‖y_diag‖ over steps. */
  outputGap: number;
  steps: number;
}

export function diagonalGap(
  shape: ScanShape, inp: { x: FloatArray; z: FloatArray; k: FloatArray; q: FloatArray }, along: 'longhorn-diag' | 'longhorn-exact',
): DiagGapStats {
  const { batch: B, seqLen: L, dInner: d, dState: n } = shape;
  const Sd = new Float64Array(d * n);
  const Se = new Float64Array(d * n);
  let [gapSum, rdSum, reSum, outSum, count] = [0, 0, 0, 0, 0];
  for (let b = 0; b < B; b++) {
    Sd.fill(0);
    Se.fill(0);
    for (let t = 0; t < L; t++) {
      const ko = (b * L + t) * n;
      const xo = (b * L + t) * d;
      let kk = 0;
      for (let j = 0; j < n; j++) kk += inp.k[ko + j]! ** 2;
      const S = along === 'longhorn-diag' ? Sd : Se;
      let gap2 = 0;
      let s2 = 0;
      let [rd2, re2, x2, dy2, y2] = [0, 0, 0, 0, 0];
      for (let i = 0; i < d; i++) {
        const e = 1 / (1 + Math.exp(-inp.z[xo + i]!) + kk); // ε = β/(1 + β‖k‖²)
        const xi = inp.x[xo + i]!;
        const o = i * n;
        // one-step gap from the same state: exact − diag = −ε k (k·s) + ε k² ⊙ s
        let ks = 0;
        for (let j = 0; j < n; j++) ks += inp.k[ko + j]! * S[o + j]!;
        for (let j = 0; j < n; j++) {
          const kj = inp.k[ko + j]!;
          gap2 += (e * (kj * kj * S[o + j]! - kj * ks)) ** 2;
          s2 += S[o + j]! ** 2;
        }
        // advance both trajectories
        let ksE = 0;
        for (let j = 0; j < n; j++) ksE += inp.k[ko + j]! * Se[o + j]!;
        const er = e * (xi - ksE);
        let [kSd, kSe, yd, ye] = [0, 0, 0, 0];
        for (let j = 0; j < n; j++) {
          const kj = inp.k[ko + j]!;
          Sd[o + j] = (1 - e * kj * kj) * Sd[o + j]! + e * xi * kj;
          Se[o + j] = Se[o + j]! + er * kj;
          kSd += Sd[o + j]! * kj;
          kSe += Se[o + j]! * kj;
          yd += Sd[o + j]! * inp.q[ko + j]!;
          ye += Se[o + j]! * inp.q[ko + j]!;
        }
        rd2 += (kSd - xi) ** 2;
        re2 += (kSe - xi) ** 2;
        x2 += xi * xi;
        dy2 += (ye - yd) ** 2;
        y2 += yd * yd;
      }
      if (t === 0) continue; // S_0 = 0: no gap to measure
      if (s2 > 0) gapSum += Math.sqrt(gap2 / s2);
      if (x2 > 0) {
        rdSum += Math.sqrt(rd2 / x2);
        reSum += Math.sqrt(re2 / x2);
      }
      if (y2 > 0) outSum += Math.sqrt(dy2 / y2);
      count++;
    }
  }
  const m = (v: number) => (count ? v / count : NaN);
  return { relGap: m(gapSum), residualDiag: m(rdSum), residualExact: m(reSum), outputGap: m(outSum), steps: count };
}
