/**
 * The fused selective-scan kernel: one pass over time per batch element, the whole state S ∈ R^{d×n} held in a
 * float64 scratch, with a pluggable per-row transition. Forward stores S every `chunk` steps; backward walks the
 * segments in reverse, recomputes the states inside each segment from its checkpoint and runs the reverse-time
 * adjoint  G_t = g_t q_t + ∂S_t/∂S_{t−1}ᵀ G_{t+1}  (Longhorn paper §3; Mamba's selective scan backward).
 * We never rebuild S_{t−1} by dividing by the transition: a can be ~0.
 *
 * Transitions (per channel i, state row s = S[i, :], scalar coefficient c = c_{t,i}):
 *   longhorn-diag  c = ε = β/(1+β‖k‖²) = 1/(1+e^{−z}+‖k‖²);  s_j ← (1 − c k_j²) s_j + c x k_j      (paper eq. 9)
 *   longhorn-exact c = ε as above;  s ← (I − c k kᵀ) s + c x k = s + c (x − k·s) k                   (paper eq. 7)
 *   mamba          c = Δ = softplus(z); s_j ← exp(Δ A_j) s_j + Δ x k_j,  A = −exp(A_log)      (Gu & Dao 2023, eq. 4)
 *   mamba2         c = Δ = softplus(z); s ← a s + Δ x k, a = exp(Δ A_i): one scalar decay per row (Dao & Gu 2024,
 *                  SSD; state-spaces/mamba `mamba2_simple.py`: A_log, dt per head — the mixer ties rows into heads)
 *   deltanet       c = β = sigmoid(z); k̂ = k/‖k‖, q̂ = q/‖q‖;  s ← s + β (x − k̂·s) k̂ = (I − β k̂k̂ᵀ) s + β x k̂
 *                  (Schlag et al. 2021; Yang et al. 2024; fla-org/flash-linear-attention `delta_rule`, qk L2 norm)
 *   gated-deltanet c = β as above, a = exp(A_i softplus(z_α)); s ← a (I − β k̂k̂ᵀ) s + β x k̂ = a s + β (x − a k̂·s) k̂
 *                  (Yang, Kautz & Hatamizadeh 2024, eq. 10; fla `gated_delta_rule`, `gated_deltanet.py`)
 * Output reads the updated state: y_t = S_t q_t (q̂_t for the delta rules). The L2 norm is x/√(‖x‖² + 1e-6), as fla's
 * `l2norm` (`use_qk_l2norm_in_kernel`), and is part of the kernel so its gradient is checked with the rest.
 *
 * Layouts (row-major): x, z, zA: [B, L, d]; k, q: [B, L, n]; aLog: [d, n] (mamba) or [d] (mamba2, gated-deltanet);
 * y: [B, L, d].
 */

import { simdScanAvailable, simdScanBackward, simdScanForward } from './scan-simd.js';

export type FloatArray = Float32Array | Float64Array;

export const TRANSITIONS = ['longhorn-diag', 'longhorn-exact', 'mamba', 'mamba2', 'deltanet', 'gated-deltanet'] as const;
export type Transition = (typeof TRANSITIONS)[number];
/** The transitions the WebAssembly SIMD kernel implements (the others run the TypeScript kernel). */
export const SIMD_TRANSITIONS = ['longhorn-diag', 'longhorn-exact', 'mamba'] as const satisfies readonly Transition[];
/** One scalar decay per state row, A = −exp(A_log) with A_log [d]. */
export const hasRowDecay = (kind: Transition) => kind === 'mamba2' || kind === 'gated-deltanet';
/** Delta rules: L2-normalised keys and queries, β = sigmoid(z). */
export const isDeltaRule = (kind: Transition) => kind === 'deltanet' || kind === 'gated-deltanet';
/** Which transitions take an A_log input (and return its gradient). */
export const hasALog = (kind: Transition) => kind === 'mamba' || hasRowDecay(kind);
/** L2 norm of the delta rules: x/√(‖x‖² + L2_EPS) (fla's l2norm). */
export const L2_EPS = 1e-6;

export interface ScanShape {
  batch: number;
  seqLen: number;
  /** d: channels (d_inner). */
  dInner: number;
  /** n: state size per channel. */
  dState: number;
}

export interface ScanInputs {
  /** [B, L, d] values written into the state. */
  x: FloatArray;
  /** [B, L, d] longhorn: z_β with β = sigmoid(z_β); mamba: pre-softplus Δ (dt_proj output incl. bias). */
  z: FloatArray;
  /** [B, L, n] keys (Mamba's B). */
  k: FloatArray;
  /** [B, L, n] queries (Mamba's C). */
  q: FloatArray;
  /** [d, n] Mamba: A = −exp(A_log); [d] Mamba2 and Gated DeltaNet (one scalar decay per row). */
  aLog?: FloatArray;
  /** [B, L, d] Gated DeltaNet only: pre-softplus decay step, a = exp(A softplus(zA)). */
  zA?: FloatArray;
}

export interface ScanGrads {
  gx: FloatArray;
  gz: FloatArray;
  gk: FloatArray;
  gq: FloatArray;
  /** Transitions with A_log (mamba, mamba2, gated-deltanet). */
  gALog?: FloatArray;
  /** Gated DeltaNet only. */
  gzA?: FloatArray;
}

/**
 * Which kernel runs: 'js' is the TypeScript loop (float64 state, the reference; any input precision), 'simd' the
 * WebAssembly f32x4 kernel (scan-simd.ts: float32 inputs, d_inner % 4 = 0), 'auto' picks 'simd' whenever it applies.
 */
export type ScanImpl = 'auto' | 'js' | 'simd';

export interface ScanOptions {
  /** Checkpoint interval C (memory/recompute trade-off only). */
  chunk?: number;
  impl?: ScanImpl;
}

/**
 * What backward needs from forward: per-(b,t,i) coefficients and state checkpoints, [B, nSeg, d, n] for the
 * TypeScript kernel (float64) and [B, nSeg, n, d] for the SIMD kernel (float32); `impl` says which.
 */
export interface ScanSaved {
  kind: Transition;
  shape: ScanShape;
  chunk: number;
  impl: 'js' | 'simd';
  coef: FloatArray;
  checkpoints: FloatArray;
  /** TypeScript kernel, row-decay transitions: the decay a per (b, t, i) [B, L, d]. */
  decay?: Float64Array;
  /** TypeScript kernel, delta rules: normalised keys/queries [B, L, n] and 1/√(‖·‖² + ε) per (b, t) [B, L]. */
  kn?: Float64Array;
  qn?: Float64Array;
  kRho?: Float64Array;
  qRho?: Float64Array;
}

export const DEFAULT_CHUNK = 16;

// ---------------------------------------------------------------------------------------------------------------
// Transitions, one time step for all d channels at once (one call per (b, t) keeps V8's loops tight).
// Row i of the state lives at S[sOff + i·n .. sOff + (i+1)·n); c[i] is its coefficient; y[yOff + i] ← s_i·q (if y).

type StepT = (
  S: Float64Array, sOff: number, d: number, n: number, x: FloatArray, xOff: number, c: FloatArray, cOff: number,
  k: FloatArray, kOff: number, q: FloatArray, y: FloatArray | null, A: Float64Array, dec: Float64Array | null,
) => void;

const stepDiag: StepT = (S, sOff, d, n, x, xOff, c, cOff, k, kOff, q, y, _A) => {
  for (let i = 0; i < d; i++) {
    const e = c[cOff + i]!;
    const ex = e * x[xOff + i]!;
    const o = sOff + i * n;
    let acc = 0;
    for (let j = 0; j < n; j++) {
      const kj = k[kOff + j]!;
      const v = (1 - e * kj * kj) * S[o + j]! + ex * kj;
      S[o + j] = v;
      acc += v * q[kOff + j]!;
    }
    if (y) y[xOff + i] = acc;
  }
};

const stepExact: StepT = (S, sOff, d, n, x, xOff, c, cOff, k, kOff, q, y, _A) => {
  for (let i = 0; i < d; i++) {
    const o = sOff + i * n;
    let ks = 0;
    for (let j = 0; j < n; j++) ks += k[kOff + j]! * S[o + j]!;
    const er = c[cOff + i]! * (x[xOff + i]! - ks); // the implicit update's step along k: ε (x − k·s)
    let acc = 0;
    for (let j = 0; j < n; j++) {
      const v = S[o + j]! + er * k[kOff + j]!;
      S[o + j] = v;
      acc += v * q[kOff + j]!;
    }
    if (y) y[xOff + i] = acc;
  }
};

const stepMamba: StepT = (S, sOff, d, n, x, xOff, c, cOff, k, kOff, q, y, A) => {
  for (let i = 0; i < d; i++) {
    const dt = c[cOff + i]!;
    const dx = dt * x[xOff + i]!;
    const o = sOff + i * n;
    let acc = 0;
    for (let j = 0; j < n; j++) {
      const v = Math.exp(dt * A[i * n + j]!) * S[o + j]! + dx * k[kOff + j]!;
      S[o + j] = v;
      acc += v * q[kOff + j]!;
    }
    if (y) y[xOff + i] = acc;
  }
};

/** Mamba2: one scalar decay a = exp(Δ A_i) per row (dec, indexed like c). */
const stepRowDecay: StepT = (S, sOff, d, n, x, xOff, c, cOff, k, kOff, q, y, _A, dec) => {
  for (let i = 0; i < d; i++) {
    const a = dec![cOff + i]!;
    const dx = c[cOff + i]! * x[xOff + i]!;
    const o = sOff + i * n;
    let acc = 0;
    for (let j = 0; j < n; j++) {
      const v = a * S[o + j]! + dx * k[kOff + j]!;
      S[o + j] = v;
      acc += v * q[kOff + j]!;
    }
    if (y) y[xOff + i] = acc;
  }
};

/**
 * Delta rule (k, q already normalised): s ← a s + β (x − a k·s) k, a = 1 without a gate. Written as one residual
 * r = x − a k·s so that the rank-1 update costs 2n per row, as the exact Longhorn step.
 */
const stepDelta: StepT = (S, sOff, d, n, x, xOff, c, cOff, k, kOff, q, y, _A, dec) => {
  for (let i = 0; i < d; i++) {
    const a = dec ? dec[cOff + i]! : 1;
    const o = sOff + i * n;
    let ks = 0;
    for (let j = 0; j < n; j++) ks += k[kOff + j]! * S[o + j]!;
    const br = c[cOff + i]! * (x[xOff + i]! - a * ks);
    let acc = 0;
    for (let j = 0; j < n; j++) {
      const v = a * S[o + j]! + br * k[kOff + j]!;
      S[o + j] = v;
      acc += v * q[kOff + j]!;
    }
    if (y) y[xOff + i] = acc;
  }
};

/**
 * Backward of one time step for all channels. In: G = ∂L/∂S_{t+1}-side adjoint (already carried back to S_t),
 * S_t at sOff, S_{t−1} at pOff, gy row. First adds the output's contribution (y = S_t q), then carries G back
 * through the transition to ∂L/∂S_{t−1}. Writes gc[i] = ∂L/∂c_i, gx row; accumulates gk[j], gq[j] (float64
 * scratch of this step) and gA (Mamba).
 */
type BackT = (
  G: Float64Array, S: Float64Array, sOff: number, pOff: number, d: number, n: number, x: FloatArray, xOff: number,
  c: FloatArray, k: FloatArray, kOff: number, q: FloatArray, gy: FloatArray, gx: FloatArray, gc: Float64Array,
  gk: Float64Array, gq: Float64Array, A: Float64Array, gA: Float64Array, dec: Float64Array | null, gdec: Float64Array,
) => void;

/** G_i += g_i q; gq += g_i s_t,i  (y_i = s_t,i · q). */
function backOutput(G: Float64Array, S: Float64Array, o: number, so: number, n: number, g: number, q: FloatArray, kOff: number, gq: Float64Array): void {
  for (let j = 0; j < n; j++) {
    G[o + j] += g * q[kOff + j]!;
    gq[j] += g * S[so + j]!;
  }
}

const backDiag: BackT = (G, S, sOff, pOff, d, n, x, xOff, c, k, kOff, q, gy, gx, gc, gk, gq, _A, _gA) => {
  for (let i = 0; i < d; i++) {
    const o = i * n;
    const gyi = gy[xOff + i]!;
    const e = c[xOff + i]!;
    const xi = x[xOff + i]!;
    let gci = 0;
    let gkx = 0;
    for (let j = 0; j < n; j++) {
      const kj = k[kOff + j]!;
      const g = G[o + j]! + gyi * q[kOff + j]!; // y = s_t · q (output reads the updated state)
      gq[j] += gyi * S[sOff + o + j]!;
      const sp = S[pOff + o + j]!;
      gci += g * (xi * kj - kj * kj * sp); // ∂a/∂ε = −k², ∂b/∂ε = x k
      gkx += g * kj;
      gk[j] += g * e * (xi - 2 * kj * sp);
      G[o + j] = (1 - e * kj * kj) * g;
    }
    gc[i] = gci;
    gx[xOff + i] = e * gkx;
  }
};

const backExact: BackT = (G, S, sOff, pOff, d, n, x, xOff, c, k, kOff, q, gy, gx, gc, gk, gq, _A, _gA) => {
  for (let i = 0; i < d; i++) {
    const o = i * n;
    backOutput(G, S, o, sOff + o, n, gy[xOff + i]!, q, kOff, gq);
    const e = c[xOff + i]!;
    let kG = 0;
    let ks = 0;
    for (let j = 0; j < n; j++) {
      kG += k[kOff + j]! * G[o + j]!;
      ks += k[kOff + j]! * S[pOff + o + j]!;
    }
    const r = x[xOff + i]! - ks;
    const gr = e * kG; // s_t = s + ε r k with r = x − k·s
    for (let j = 0; j < n; j++) {
      const g = G[o + j]!;
      gk[j] += e * r * g - gr * S[pOff + o + j]!;
      G[o + j] = g - gr * k[kOff + j]!; // (I − ε k kᵀ) G
    }
    gc[i] = r * kG;
    gx[xOff + i] = gr;
  }
};

const backMamba: BackT = (G, S, sOff, pOff, d, n, x, xOff, c, k, kOff, q, gy, gx, gc, gk, gq, A, gA) => {
  for (let i = 0; i < d; i++) {
    const o = i * n;
    backOutput(G, S, o, sOff + o, n, gy[xOff + i]!, q, kOff, gq);
    const dt = c[xOff + i]!;
    const xi = x[xOff + i]!;
    let gci = 0;
    let gkx = 0;
    for (let j = 0; j < n; j++) {
      const kj = k[kOff + j]!;
      const g = G[o + j]!;
      const Aj = A[o + j]!;
      const a = Math.exp(dt * Aj);
      const ga = g * S[pOff + o + j]!;
      gci += ga * a * Aj + g * xi * kj;
      gA[o + j] += ga * a * dt;
      gkx += g * kj;
      gk[j] += g * dt * xi;
      G[o + j] = a * g;
    }
    gc[i] = gci;
    gx[xOff + i] = dt * gkx;
  }
};

/** Mamba2 (s_t = a s + c x k): writes ∂L/∂c and ∂L/∂a per row (gc, gdec); the chain to z and A_log is the caller's. */
const backRowDecay: BackT = (G, S, sOff, pOff, d, n, x, xOff, c, k, kOff, q, gy, gx, gc, gk, gq, _A, _gA, dec, gdec) => {
  for (let i = 0; i < d; i++) {
    const o = i * n;
    backOutput(G, S, o, sOff + o, n, gy[xOff + i]!, q, kOff, gq);
    const a = dec![xOff + i]!;
    const ci = c[xOff + i]!;
    const xi = x[xOff + i]!;
    let gkG = 0;
    let gsG = 0;
    for (let j = 0; j < n; j++) {
      const g = G[o + j]!;
      gkG += g * k[kOff + j]!;
      gsG += g * S[pOff + o + j]!;
      gk[j] += g * ci * xi;
      G[o + j] = a * g;
    }
    gc[i] = xi * gkG;
    gdec[i] = gsG;
    gx[xOff + i] = ci * gkG;
  }
};

/**
 * Delta rule (s_t = a s + β r k, r = x − a k·s): ∂β = r (k·G), ∂r = β (k·G), ∂a = s·G − ∂r (k·s),
 * ∂k = β r G − a ∂r s, ∂s = a (G − ∂r k). k is the normalised key here; the caller chains through the norm.
 */
const backDelta: BackT = (G, S, sOff, pOff, d, n, x, xOff, c, k, kOff, q, gy, gx, gc, gk, gq, _A, _gA, dec, gdec) => {
  for (let i = 0; i < d; i++) {
    const o = i * n;
    backOutput(G, S, o, sOff + o, n, gy[xOff + i]!, q, kOff, gq);
    const a = dec ? dec[xOff + i]! : 1;
    const bi = c[xOff + i]!;
    let kG = 0;
    let ks = 0;
    let sG = 0;
    for (let j = 0; j < n; j++) {
      const kj = k[kOff + j]!;
      const sp = S[pOff + o + j]!;
      kG += kj * G[o + j]!;
      ks += kj * sp;
      sG += sp * G[o + j]!;
    }
    const r = x[xOff + i]! - a * ks;
    const gr = bi * kG;
    for (let j = 0; j < n; j++) {
      const g = G[o + j]!;
      gk[j] += bi * r * g - a * gr * S[pOff + o + j]!;
      G[o + j] = a * (g - gr * k[kOff + j]!);
    }
    gc[i] = r * kG;
    gdec[i] = sG - gr * ks;
    gx[xOff + i] = gr;
  }
};

const STEP: Record<Transition, StepT> = {
  'longhorn-diag': stepDiag, 'longhorn-exact': stepExact, mamba: stepMamba, mamba2: stepRowDecay, deltanet: stepDelta, 'gated-deltanet': stepDelta,
};
const BACK: Record<Transition, BackT> = {
  'longhorn-diag': backDiag, 'longhorn-exact': backExact, mamba: backMamba, mamba2: backRowDecay, deltanet: backDelta, 'gated-deltanet': backDelta,
};

const isLonghorn = (kind: Transition) => kind === 'longhorn-diag' || kind === 'longhorn-exact';

const softplus = (z: number) => (z > 20 ? z : Math.log1p(Math.exp(z)));
const sigmoid64 = (z: number) => 1 / (1 + Math.exp(-z));

/** ε = 1/(1 + e^{−z} + ‖k‖²) (= β/(1+β‖k‖²), β = sigmoid z), Δ = softplus(z) (Mamba, Mamba2) or β = sigmoid(z). */
function coefOf(kind: Transition, z: number, kk: number): number {
  if (isLonghorn(kind)) return 1 / (1 + Math.exp(-z) + kk);
  if (isDeltaRule(kind)) return sigmoid64(z);
  return softplus(z);
}

/**
 * Per-(b, t) preparation shared by the forward, the backward's recomputation and the decode step: coefficients,
 * row decays (Mamba2: exp(Δ A_i); Gated DeltaNet: exp(A_i softplus(zA))) and, for the delta rules, the normalised
 * keys and queries. `rows` = B·L (or B for one decode step).
 */
interface Prepared {
  coef: Float64Array;
  decay: Float64Array | null;
  k: FloatArray;
  q: FloatArray;
  kRho: Float64Array | null;
  qRho: Float64Array | null;
}

function l2Normalise(v: FloatArray, rows: number, n: number): { out: Float64Array; rho: Float64Array } {
  const out = new Float64Array(rows * n);
  const rho = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const p = 1 / Math.sqrt(sqNorm(v, r * n, n) + L2_EPS);
    rho[r] = p;
    for (let j = 0; j < n; j++) out[r * n + j] = v[r * n + j]! * p;
  }
  return { out, rho };
}

function prepare(kind: Transition, rows: number, d: number, n: number, inp: ScanInputs, A: Float64Array): Prepared {
  const coef = new Float64Array(rows * d);
  let k: FloatArray = inp.k;
  let q: FloatArray = inp.q;
  let kRho: Float64Array | null = null;
  let qRho: Float64Array | null = null;
  if (isDeltaRule(kind)) {
    const kn = l2Normalise(inp.k, rows, n);
    const qn = l2Normalise(inp.q, rows, n);
    [k, q, kRho, qRho] = [kn.out, qn.out, kn.rho, qn.rho];
  }
  for (let bt = 0; bt < rows; bt++) {
    const kk = isLonghorn(kind) ? sqNorm(inp.k, bt * n, n) : 0;
    for (let i = 0, row = bt * d; i < d; i++) coef[row + i] = coefOf(kind, inp.z[row + i]!, kk);
  }
  let decay: Float64Array | null = null;
  if (kind === 'mamba2') {
    decay = new Float64Array(rows * d);
    for (let o = 0; o < decay.length; o++) decay[o] = Math.exp(coef[o]! * A[o % d]!);
  } else if (kind === 'gated-deltanet') {
    decay = new Float64Array(rows * d);
    for (let o = 0; o < decay.length; o++) decay[o] = Math.exp(softplus(inp.zA![o]!) * A[o % d]!);
  }
  return { coef, decay, k, q, kRho, qRho };
}

/** ∂L/∂v from ∂L/∂v̂ for v̂ = ρ v, ρ = (‖v‖² + ε)^−½: ρ (g − v̂ (v̂·g)), in place on g (one row of n). */
function l2NormBackward(g: Float64Array, vn: Float64Array, off: number, rho: number, n: number): void {
  let dot = 0;
  for (let j = 0; j < n; j++) dot += vn[off + j]! * g[j]!;
  for (let j = 0; j < n; j++) g[j] = rho * (g[j]! - vn[off + j]! * dot);
}

function checkInputs(kind: Transition, shape: ScanShape, inp: ScanInputs): Float64Array {
  if (!(TRANSITIONS as readonly string[]).includes(kind)) {
    throw new Error(`scan: unknown transition '${kind}' (expected one of ${TRANSITIONS.join(', ')})`);
  }
  const { batch, seqLen, dInner, dState } = shape;
  for (const [name, v] of Object.entries(shape)) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`scan: ${name} must be a positive integer, got ${v}`);
  }
  const want = (name: string, arr: FloatArray | undefined, len: number, dims: string) => {
    if (!arr) throw new Error(`scan: ${name} is required`);
    if (arr.length !== len) throw new Error(`scan: ${name} has ${arr.length} elements, expected ${dims} = ${len}`);
  };
  want('x', inp.x, batch * seqLen * dInner, '[B, L, d]');
  want('z', inp.z, batch * seqLen * dInner, '[B, L, d]');
  want('k', inp.k, batch * seqLen * dState, '[B, L, n]');
  want('q', inp.q, batch * seqLen * dState, '[B, L, n]');
  if (kind === 'gated-deltanet') want('zA', inp.zA, batch * seqLen * dInner, '[B, L, d]');
  if (!hasALog(kind)) return new Float64Array(0);
  const len = kind === 'mamba' ? dInner * dState : dInner;
  want('aLog', inp.aLog, len, kind === 'mamba' ? '[d, n]' : '[d]');
  const A = new Float64Array(len);
  for (let i = 0; i < len; i++) A[i] = -Math.exp(inp.aLog![i]!);
  return A;
}

function sqNorm(k: FloatArray, off: number, n: number): number {
  let s = 0;
  for (let j = 0; j < n; j++) s += k[off + j]! * k[off + j]!;
  return s;
}

function like(a: FloatArray, len: number): FloatArray {
  return a instanceof Float64Array ? new Float64Array(len) : new Float32Array(len);
}

/** Which kernel `scanForward` will run for these inputs (resolves 'auto'; throws if an explicit 'simd' cannot run). */
export const scanImplFor = (kind: Transition, shape: ScanShape, inp: ScanInputs, impl: ScanImpl = 'auto'): 'js' | 'simd' =>
  pickImpl(kind, shape, inp, impl);

/** Resolves 'auto' and checks that an explicit 'simd' request can run. */
function pickImpl(kind: Transition, shape: ScanShape, inp: ScanInputs, impl: ScanImpl = 'auto'): 'js' | 'simd' {
  const f32 = inp.x instanceof Float32Array && inp.z instanceof Float32Array && inp.k instanceof Float32Array && inp.q instanceof Float32Array;
  const ok = f32 && simdScanAvailable(kind, shape.dInner);
  if (impl === 'simd' && !ok) {
    throw new Error(`scan: impl 'simd' needs float32 inputs and d_inner % 4 = 0 (got ${kind}, d_inner ${shape.dInner}, ${inp.x.constructor.name})`);
  }
  return impl === 'js' || !ok ? 'js' : 'simd';
}

/** Forward scan with zero initial state. Returns y [B, L, d] (same float type as x) and what backward needs. */
export function scanForward(
  kind: Transition,
  shape: ScanShape,
  inp: ScanInputs,
  opts: ScanOptions = {},
): { y: FloatArray; saved: ScanSaved } {
  const A = checkInputs(kind, shape, inp);
  const { batch: B, seqLen: L, dInner: d, dState: n } = shape;
  const chunk = opts.chunk ?? DEFAULT_CHUNK;
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`scan: chunk must be a positive integer, got ${chunk}`);
  const impl = pickImpl(kind, shape, inp, opts.impl);
  const { x, z, k, q } = inp;
  if (impl === 'simd') {
    const r = simdScanForward(kind, shape, chunk, x as Float32Array, z as Float32Array, k as Float32Array, q as Float32Array, inp.aLog);
    return { y: r.y, saved: { kind, shape: { ...shape }, chunk, impl, coef: r.coef, checkpoints: r.checkpoints } };
  }
  const p = prepare(kind, B * L, d, n, inp, A);
  const nSeg = Math.ceil(L / chunk);
  const dn = d * n;
  const y = like(x, B * L * d);
  const checkpoints = new Float64Array(B * nSeg * dn);
  const S = new Float64Array(dn);
  const step = STEP[kind];
  for (let b = 0; b < B; b++) {
    S.fill(0);
    for (let t = 0; t < L; t++) {
      if (t % chunk === 0) checkpoints.set(S, (b * nSeg + t / chunk) * dn);
      const row = (b * L + t) * d;
      step(S, 0, d, n, x, row, p.coef, row, p.k, (b * L + t) * n, p.q, y, A, p.decay);
    }
  }
  const saved: ScanSaved = { kind, shape: { ...shape }, chunk, impl, coef: p.coef, checkpoints };
  if (p.decay) saved.decay = p.decay;
  if (p.kRho) Object.assign(saved, { kn: p.k, qn: p.q, kRho: p.kRho, qRho: p.qRho });
  return { y, saved };
}

/** Backward of `scanForward`: gradients of a loss w.r.t. every input, given gy = ∂loss/∂y [B, L, d]. */
export function scanBackward(inp: ScanInputs, saved: ScanSaved, gy: FloatArray): ScanGrads {
  const { kind, shape, chunk, coef, checkpoints } = saved;
  const A = checkInputs(kind, shape, inp);
  const { batch: B, seqLen: L, dInner: d, dState: n } = shape;
  if (gy.length !== B * L * d) throw new Error(`scan backward: gy has ${gy.length} elements, expected [B, L, d] = ${B * L * d}`);
  if (saved.impl === 'simd') {
    const f32 = (a: FloatArray) => (a instanceof Float32Array ? a : Float32Array.from(a));
    return simdScanBackward(kind, shape, chunk, f32(inp.x), coef as Float32Array, f32(inp.k), f32(inp.q), f32(gy), checkpoints as Float32Array, f32(inp.z), inp.aLog);
  }
  const nSeg = Math.ceil(L / chunk);
  const dn = d * n;
  const { x, z } = inp;
  const delta = isDeltaRule(kind);
  if (delta && !(saved.kn && saved.qn && saved.kRho && saved.qRho)) throw new Error('scan backward: saved state lacks the normalised keys of a delta rule');
  if (hasRowDecay(kind) && !saved.decay) throw new Error('scan backward: saved state lacks the row decays');
  // The state recurrence reads the normalised keys/queries of the delta rules, the raw ones otherwise.
  const k: FloatArray = delta ? saved.kn! : inp.k;
  const q: FloatArray = delta ? saved.qn! : inp.q;
  const dec = saved.decay ?? null;
  const gx = like(x, x.length);
  const gz = like(x, z.length);
  const gk = like(x, inp.k.length);
  const gq = like(x, inp.q.length);
  const gA = new Float64Array(A.length);
  const gzA = kind === 'gated-deltanet' ? like(x, z.length) : null;
  const G = new Float64Array(dn); // adjoint of S_t
  const buf = new Float64Array((chunk + 1) * dn); // S_{t0−1} .. S_{t1−1} of the current segment
  const gkt = new Float64Array(n);
  const gqt = new Float64Array(n);
  const gc = new Float64Array(d);
  const gdec = new Float64Array(d);
  const step = STEP[kind];
  const back = BACK[kind];
  const longhorn = isLonghorn(kind);
  for (let b = 0; b < B; b++) {
    G.fill(0);
    for (let seg = nSeg - 1; seg >= 0; seg--) {
      const t0 = seg * chunk;
      const t1 = Math.min(L, t0 + chunk);
      // Recompute the segment's states from its checkpoint.
      buf.set(checkpoints.subarray((b * nSeg + seg) * dn, (b * nSeg + seg + 1) * dn), 0);
      for (let t = t0; t < t1; t++) {
        const off = (t - t0 + 1) * dn;
        buf.copyWithin(off, off - dn, off);
        const row = (b * L + t) * d;
        step(buf, off, d, n, x, row, coef, row, k, (b * L + t) * n, q, null, A, dec);
      }
      // Reverse-time adjoint through the segment.
      for (let t = t1 - 1; t >= t0; t--) {
        const sOff = (t - t0 + 1) * dn;
        const kOff = (b * L + t) * n;
        const row = (b * L + t) * d;
        gkt.fill(0);
        gqt.fill(0);
        back(G, buf, sOff, sOff - dn, d, n, x, row, coef, k, kOff, q, gy, gx, gc, gkt, gqt, A, gA, dec, gdec);
        let gkk = 0; // ∂L/∂‖k_t‖², shared by all channels (Longhorn)
        if (longhorn) {
          const kk = sqNorm(k, kOff, n);
          for (let i = 0; i < d; i++) {
            // ∂ε/∂z = e^{−z} ε² = ε / (1 + (1+‖k‖²) e^{z}): no cancellation as β → 1 (the form
            // ε (1 − (1+‖k‖²) ε) loses all digits there) and no overflow (e^{z} = ∞ gives 0); ∂ε/∂‖k‖² = −ε².
            const e = coef[row + i]!;
            gz[row + i] = (gc[i]! * e) / (1 + (1 + kk) * Math.exp(z[row + i]!));
            gkk -= gc[i]! * e * e;
          }
        } else if (kind === 'mamba2') {
          // a = exp(Δ A): ∂Δ += ∂a · a A, ∂A += ∂a · a Δ; Δ = softplus(z), softplus' = sigmoid.
          for (let i = 0; i < d; i++) {
            const ga = gdec[i]! * dec![row + i]!;
            gA[i] += ga * coef[row + i]!;
            gz[row + i] = (gc[i]! + ga * A[i]!) * sigmoid64(z[row + i]!);
          }
        } else if (delta) {
          // β = sigmoid(z): β' = β (1 − β). Gated: a = exp(A softplus(zA)), ∂zA = ∂a · a A σ(zA), ∂A += ∂a · a softplus(zA).
          for (let i = 0; i < d; i++) {
            const bi = coef[row + i]!;
            gz[row + i] = gc[i]! * bi * (1 - bi);
            if (gzA) {
              const ga = gdec[i]! * dec![row + i]!;
              const za = inp.zA![row + i]!;
              gA[i] += ga * softplus(za);
              gzA[row + i] = ga * A[i]! * sigmoid64(za);
            }
          }
          l2NormBackward(gkt, saved.kn!, kOff, saved.kRho![b * L + t]!, n);
          l2NormBackward(gqt, saved.qn!, kOff, saved.qRho![b * L + t]!, n);
        } else {
          for (let i = 0; i < d; i++) gz[row + i] = gc[i]! / (1 + Math.exp(-z[row + i]!)); // softplus' = sigmoid
        }
        for (let j = 0; j < n; j++) {
          gk[kOff + j] = gkt[j]! + 2 * k[kOff + j]! * gkk;
          gq[kOff + j] = gqt[j]!;
        }
      }
    }
  }
  const out: ScanGrads = { gx, gz, gk, gq };
  if (hasALog(kind)) {
    const gALog = like(x, A.length);
    for (let i = 0; i < A.length; i++) gALog[i] = gA[i]! * A[i]!; // ∂A/∂A_log = A
    out.gALog = gALog;
  }
  if (gzA) out.gzA = gzA;
  return out;
}

/**
 * One recurrent decode step for a batch: S [B, d, n] (float64, updated in place), x, z (, zA) [B, d], k, q [B, n].
 * Returns y [B, d]. Identical arithmetic to `scanForward`, so decode equals the training path.
 */
export function scanStep(
  kind: Transition,
  dims: { batch: number; dInner: number; dState: number },
  S: Float64Array,
  inp: ScanInputs,
): Float32Array {
  const { batch: B, dInner: d, dState: n } = dims;
  const A = checkInputs(kind, { batch: B, seqLen: 1, dInner: d, dState: n }, inp);
  if (S.length !== B * d * n) throw new Error(`scanStep: state has ${S.length} elements, expected [B, d, n] = ${B * d * n}`);
  const y = new Float32Array(B * d);
  const p = prepare(kind, B, d, n, inp, A);
  for (let b = 0; b < B; b++) STEP[kind](S, b * d * n, d, n, inp.x, b * d, p.coef, b * d, p.k, b * n, p.q, y, A, p.decay);
  return y;
}
