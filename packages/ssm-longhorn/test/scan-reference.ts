/** Test helpers shared by the scan tests: the float64 reference loop, random inputs, a relative error. */
import { Rng } from '@saelab/core';
import type { ScanInputs, ScanShape, Transition } from '../src/scan.js';

/**
 * Float64 reference: the recurrences written the plain way — full state matrices, the exact update as an explicit
 * (I − ε k kᵀ) matrix product, every state kept.
 */
export function reference(kind: Transition, sh: ScanShape, inp: ScanInputs): Float64Array {
  const { batch: B, seqLen: L, dInner: d, dState: n } = sh;
  const y = new Float64Array(B * L * d);
  for (let b = 0; b < B; b++) {
    const S = Array.from({ length: d }, () => new Float64Array(n));
    for (let t = 0; t < L; t++) {
      const delta = kind === 'deltanet' || kind === 'gated-deltanet';
      // Delta rules read L2-normalised keys and queries (fla's l2norm: v / √(‖v‖² + 1e-6)).
      const unit = (v: number[]) => {
        const r = Math.sqrt(v.reduce((s, e) => s + e * e, 0) + 1e-6);
        return delta ? v.map((e) => e / r) : v;
      };
      const k = unit(Array.from({ length: n }, (_, j) => inp.k[(b * L + t) * n + j]!));
      const q = unit(Array.from({ length: n }, (_, j) => inp.q[(b * L + t) * n + j]!));
      const kk = k.reduce((s, v) => s + v * v, 0);
      for (let i = 0; i < d; i++) {
        const x = inp.x[(b * L + t) * d + i]!;
        const z = inp.z[(b * L + t) * d + i]!;
        const beta = 1 / (1 + Math.exp(-z));
        const eps = beta / (1 + beta * kk);
        const prev = S[i]!.slice();
        for (let j = 0; j < n; j++) {
          if (kind === 'longhorn-diag') S[i]![j] = (1 - eps * k[j]! * k[j]!) * prev[j]! + eps * x * k[j]!;
          else if (kind === 'longhorn-exact') {
            let v = 0;
            for (let m = 0; m < n; m++) v += ((j === m ? 1 : 0) - eps * k[j]! * k[m]!) * prev[m]!;
            S[i]![j] = v + eps * x * k[j]!;
          } else if (delta) {
            // S ← α (I − β k kᵀ) S + β x k  (α = 1 for DeltaNet; Gated DeltaNet: α = exp(−exp(A_log) softplus(zA)))
            const alpha = kind === 'deltanet' ? 1 : Math.exp(-Math.exp(inp.aLog![i]!) * Math.log(1 + Math.exp(inp.zA![(b * L + t) * d + i]!)));
            let v = 0;
            for (let m = 0; m < n; m++) v += ((j === m ? 1 : 0) - beta * k[j]! * k[m]!) * prev[m]!;
            S[i]![j] = alpha * v + beta * x * k[j]!;
          } else if (kind === 'mamba2') {
            const delta = Math.log(1 + Math.exp(z));
            S[i]![j] = Math.exp(-delta * Math.exp(inp.aLog![i]!)) * prev[j]! + delta * x * k[j]!;
          } else {
            const delta = Math.log(1 + Math.exp(z));
            const A = -Math.exp(inp.aLog![i * n + j]!);
            S[i]![j] = Math.exp(delta * A) * prev[j]! + delta * x * k[j]!;
          }
        }
        y[(b * L + t) * d + i] = S[i]!.reduce((s, v, j) => s + v * q[j]!, 0);
      }
    }
  }
  return y;
}

/** Random inputs; `kind` picks the A_log layout ([d, n] for Mamba, the default; [d] for Mamba2 / Gated DeltaNet). */
export function randomInputs(sh: ScanShape, seed: number, Ctor: typeof Float32Array | typeof Float64Array, kind: Transition = 'mamba'): ScanInputs {
  const rng = new Rng(seed);
  const { batch: B, seqLen: L, dInner: d, dState: n } = sh;
  const fill = (len: number, std: number, mean = 0) => {
    const a = new Ctor(len);
    for (let i = 0; i < len; i++) a[i] = mean + std * rng.normal();
    return a;
  };
  const aLog = new Ctor(d * n);
  for (let i = 0; i < d; i++) for (let j = 0; j < n; j++) aLog[i * n + j] = Math.log(j + 1) + 0.1 * rng.normal();
  const inp: ScanInputs = { x: fill(B * L * d, 1), z: fill(B * L * d, 1), k: fill(B * L * n, 0.6), q: fill(B * L * n, 1), aLog };
  if (kind === 'mamba2' || kind === 'gated-deltanet') {
    // one decay per row; A = −exp(A_log) spread over [−0.4, −1.5] so decays are neither ~0 nor ~1
    inp.aLog = new Ctor(d);
    for (let i = 0; i < d; i++) inp.aLog[i] = Math.log(0.4 + (1.1 * i) / Math.max(1, d - 1)) + 0.1 * rng.normal();
  }
  if (kind === 'gated-deltanet') inp.zA = fill(B * L * d, 1);
  return inp;
}

export const maxRelErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let scale = 1e-12;
  let err = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
  }
  return err / scale;
};
