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
 * Output reads the updated state: y_t = S_t q_t.
 *
 * Layouts (row-major): x, z: [B, L, d]; k, q: [B, L, n]; aLog: [d, n]; y: [B, L, d].
 */

export type FloatArray = Float32Array | Float64Array;

export const TRANSITIONS = ['longhorn-diag', 'longhorn-exact', 'mamba'] as const;
export type Transition = (typeof TRANSITIONS)[number];

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
  /** [d, n] Mamba only: A = −exp(A_log). */
  aLog?: FloatArray;
}

export interface ScanGrads {
  gx: FloatArray;
  gz: FloatArray;
  gk: FloatArray;
  gq: FloatArray;
  /** Mamba only. */
  gALog?: FloatArray;
}

/** What backward needs from forward: per-(b,t,i) coefficients and state checkpoints [B, nSeg, d, n]. */
export interface ScanSaved {
  kind: Transition;
  shape: ScanShape;
  chunk: number;
  coef: Float64Array;
  checkpoints: Float64Array;
}

export const DEFAULT_CHUNK = 16;

// ---------------------------------------------------------------------------------------------------------------
// Per-row transitions. Each updates s[sOff .. sOff+n) in place from time step (x, c, k[kOff..]) and returns s·q.

type StepRow = (
  s: Float64Array, sOff: number, n: number, x: number, c: number,
  k: FloatArray, kOff: number, q: FloatArray, A: Float64Array, aOff: number,
) => number;

const stepDiag: StepRow = (s, sOff, n, x, c, k, kOff, q, _A, _aOff) => {
  let y = 0;
  const cx = c * x;
  for (let j = 0; j < n; j++) {
    const kj = k[kOff + j]!;
    const v = (1 - c * kj * kj) * s[sOff + j]! + cx * kj;
    s[sOff + j] = v;
    y += v * q[kOff + j]!;
  }
  return y;
};

const stepExact: StepRow = (s, sOff, n, x, c, k, kOff, q, _A, _aOff) => {
  let ks = 0;
  for (let j = 0; j < n; j++) ks += k[kOff + j]! * s[sOff + j]!;
  const cr = c * (x - ks); // the implicit update's step along k: ε (x − k·s)
  let y = 0;
  for (let j = 0; j < n; j++) {
    const v = s[sOff + j]! + cr * k[kOff + j]!;
    s[sOff + j] = v;
    y += v * q[kOff + j]!;
  }
  return y;
};

const stepMamba: StepRow = (s, sOff, n, x, c, k, kOff, q, A, aOff) => {
  let y = 0;
  const cx = c * x;
  for (let j = 0; j < n; j++) {
    const v = Math.exp(c * A[aOff + j]!) * s[sOff + j]! + cx * k[kOff + j]!;
    s[sOff + j] = v;
    y += v * q[kOff + j]!;
  }
  return y;
};

/**
 * Backward of one row's transition. In: G[gOff..] = ∂L/∂s_t (total), sp = s_{t−1}. Out: G ← ∂L/∂s_{t−1},
 * gk[j] += ∂L/∂k_j, gA[aOff+j] += ∂L/∂A_j (mamba), and res[0] = ∂L/∂c, res[1] = ∂L/∂x.
 */
type BackRow = (
  G: Float64Array, gOff: number, sp: Float64Array, spOff: number, n: number, x: number, c: number,
  k: FloatArray, kOff: number, gk: Float64Array, A: Float64Array, gA: Float64Array, aOff: number, res: Float64Array,
) => void;

const backDiag: BackRow = (G, gOff, sp, spOff, n, x, c, k, kOff, gk, _A, _gA, _aOff, res) => {
  let gc = 0;
  let gkx = 0;
  for (let j = 0; j < n; j++) {
    const kj = k[kOff + j]!;
    const g = G[gOff + j]!;
    const s = sp[spOff + j]!;
    gc += g * (x * kj - kj * kj * s); // ∂a/∂c = −k², ∂b/∂c = x k
    gkx += g * kj;
    gk[j] += g * c * (x - 2 * kj * s);
    G[gOff + j] = (1 - c * kj * kj) * g;
  }
  res[0] = gc;
  res[1] = c * gkx;
};

const backExact: BackRow = (G, gOff, sp, spOff, n, x, c, k, kOff, gk, _A, _gA, _aOff, res) => {
  let kG = 0;
  let ks = 0;
  for (let j = 0; j < n; j++) {
    kG += k[kOff + j]! * G[gOff + j]!;
    ks += k[kOff + j]! * sp[spOff + j]!;
  }
  const r = x - ks;
  const gr = c * kG; // s_t = s + c r k, r = x − k·s
  for (let j = 0; j < n; j++) {
    const kj = k[kOff + j]!;
    const g = G[gOff + j]!;
    gk[j] += c * r * g - gr * sp[spOff + j]!;
    G[gOff + j] = g - gr * kj; // (I − c k kᵀ) G
  }
  res[0] = r * kG;
  res[1] = gr;
};

const backMamba: BackRow = (G, gOff, sp, spOff, n, x, c, k, kOff, gk, A, gA, aOff, res) => {
  let gc = 0;
  let gkx = 0;
  for (let j = 0; j < n; j++) {
    const kj = k[kOff + j]!;
    const g = G[gOff + j]!;
    const Aj = A[aOff + j]!;
    const a = Math.exp(c * Aj);
    const ga = g * sp[spOff + j]!;
    gc += ga * a * Aj + g * x * kj;
    gA[aOff + j] += ga * a * c;
    gkx += g * kj;
    gk[j] += g * c * x;
    G[gOff + j] = a * g;
  }
  res[0] = gc;
  res[1] = c * gkx;
};

const STEP: Record<Transition, StepRow> = { 'longhorn-diag': stepDiag, 'longhorn-exact': stepExact, mamba: stepMamba };
const BACK: Record<Transition, BackRow> = { 'longhorn-diag': backDiag, 'longhorn-exact': backExact, mamba: backMamba };

const isLonghorn = (kind: Transition) => kind !== 'mamba';

/** ε = 1/(1 + e^{−z} + ‖k‖²) (= β/(1+β‖k‖²), β = sigmoid z) or Δ = softplus(z). */
function coefOf(kind: Transition, z: number, kk: number): number {
  if (isLonghorn(kind)) return 1 / (1 + Math.exp(-z) + kk);
  return z > 20 ? z : Math.log1p(Math.exp(z));
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
  const A = new Float64Array(kind === 'mamba' ? dInner * dState : 0);
  if (kind === 'mamba') {
    want('aLog', inp.aLog, dInner * dState, '[d, n]');
    for (let i = 0; i < A.length; i++) A[i] = -Math.exp(inp.aLog![i]!);
  }
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

/** Forward scan with zero initial state. Returns y [B, L, d] (same float type as x) and what backward needs. */
export function scanForward(
  kind: Transition,
  shape: ScanShape,
  inp: ScanInputs,
  opts: { chunk?: number } = {},
): { y: FloatArray; saved: ScanSaved } {
  const A = checkInputs(kind, shape, inp);
  const { batch: B, seqLen: L, dInner: d, dState: n } = shape;
  const chunk = opts.chunk ?? DEFAULT_CHUNK;
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`scan: chunk must be a positive integer, got ${chunk}`);
  const nSeg = Math.ceil(L / chunk);
  const dn = d * n;
  const { x, z, k, q } = inp;
  const y = like(x, B * L * d);
  const coef = new Float64Array(B * L * d);
  const checkpoints = new Float64Array(B * nSeg * dn);
  const S = new Float64Array(dn);
  const step = STEP[kind];
  for (let b = 0; b < B; b++) {
    S.fill(0);
    for (let t = 0; t < L; t++) {
      if (t % chunk === 0) checkpoints.set(S, (b * nSeg + t / chunk) * dn);
      const kOff = (b * L + t) * n;
      const kk = sqNorm(k, kOff, n);
      const row = (b * L + t) * d;
      for (let i = 0; i < d; i++) {
        const c = coefOf(kind, z[row + i]!, kk);
        coef[row + i] = c;
        y[row + i] = step(S, i * n, n, x[row + i]!, c, k, kOff, q, A, i * n);
      }
    }
  }
  return { y, saved: { kind, shape: { ...shape }, chunk, coef, checkpoints } };
}

/** Backward of `scanForward`: gradients of a loss w.r.t. every input, given gy = ∂loss/∂y [B, L, d]. */
export function scanBackward(inp: ScanInputs, saved: ScanSaved, gy: FloatArray): ScanGrads {
  const { kind, shape, chunk, coef, checkpoints } = saved;
  const A = checkInputs(kind, shape, inp);
  const { batch: B, seqLen: L, dInner: d, dState: n } = shape;
  if (gy.length !== B * L * d) throw new Error(`scan backward: gy has ${gy.length} elements, expected [B, L, d] = ${B * L * d}`);
  const nSeg = Math.ceil(L / chunk);
  const dn = d * n;
  const { x, z, k, q } = inp;
  const gx = like(x, x.length);
  const gz = like(x, z.length);
  const gk = like(x, k.length);
  const gq = like(x, q.length);
  const gA = new Float64Array(A.length);
  const G = new Float64Array(dn); // adjoint of S_t
  const buf = new Float64Array((chunk + 1) * dn); // S_{t0−1} .. S_{t1−1} of the current segment
  const gkt = new Float64Array(n);
  const gqt = new Float64Array(n);
  const res = new Float64Array(2);
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
        const kOff = (b * L + t) * n;
        const row = (b * L + t) * d;
        for (let i = 0; i < d; i++) step(buf, off + i * n, n, x[row + i]!, coef[row + i]!, k, kOff, q, A, i * n);
      }
      // Reverse-time adjoint through the segment.
      for (let t = t1 - 1; t >= t0; t--) {
        const sOff = (t - t0 + 1) * dn;
        const pOff = sOff - dn;
        const kOff = (b * L + t) * n;
        const row = (b * L + t) * d;
        const kk = longhorn ? sqNorm(k, kOff, n) : 0;
        gkt.fill(0);
        gqt.fill(0);
        let gkk = 0; // ∂L/∂‖k_t‖², shared by all channels
        for (let i = 0; i < d; i++) {
          const g = gy[row + i]!;
          const gOff = i * n;
          for (let j = 0; j < n; j++) {
            G[gOff + j] += g * q[kOff + j]!; // y = s_t · q
            gqt[j] += g * buf[sOff + gOff + j]!;
          }
          const c = coef[row + i]!;
          back(G, gOff, buf, pOff + gOff, n, x[row + i]!, c, k, kOff, gkt, A, gA, gOff, res);
          gx[row + i] = res[1]!;
          if (longhorn) {
            // ∂ε/∂z = e^{−z} ε² = ε (1 − (1+‖k‖²) ε) (no overflow for very negative z); ∂ε/∂‖k‖² = −ε².
            gz[row + i] = res[0]! * c * (1 - (1 + kk) * c);
            gkk -= res[0]! * c * c;
          } else {
            gz[row + i] = res[0]! / (1 + Math.exp(-z[row + i]!)); // softplus' = sigmoid
          }
        }
        for (let j = 0; j < n; j++) {
          gk[kOff + j] = gkt[j]! + 2 * k[kOff + j]! * gkk;
          gq[kOff + j] = gqt[j]!;
        }
      }
    }
  }
  const out: ScanGrads = { gx, gz, gk, gq };
  if (kind === 'mamba') {
    const gALog = like(x, A.length);
    for (let i = 0; i < A.length; i++) gALog[i] = gA[i]! * A[i]!; // ∂A/∂A_log = A
    out.gALog = gALog;
  }
  return out;
}

/**
 * One recurrent decode step for a batch: S [B, d, n] (float64, updated in place), x, z [B, d], k, q [B, n].
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
  const step = STEP[kind];
  const y = new Float32Array(B * d);
  for (let b = 0; b < B; b++) {
    const kOff = b * n;
    const kk = sqNorm(inp.k, kOff, n);
    for (let i = 0; i < d; i++) {
      const c = coefOf(kind, inp.z[b * d + i]!, kk);
      y[b * d + i] = step(S, (b * d + i) * n, n, inp.x[b * d + i]!, c, inp.k, kOff, inp.q, A, i * n);
    }
  }
  return y;
}
