/**
 * Decoder-row norm handling, generic over architectures: a decoder is a [m, d] matrix whose row i is the
 * direction written by latent i. Norms are accumulated in float64.
 *
 * Rows with zero norm have no direction: they are left unchanged by normalisation, projection and folding.
 */
import { type Tensor, assertShape, dims2 } from './tensor.js';
import { normalizeRowsWasm, projectRowsWasm, wasmRowKernelsAvailable } from './fast/wasm.js';

/**
 * The projection and the normalisation run as WebAssembly kernels where available (fast/kernels.wat: the same f64
 * sums in the same order, two rows at a time, so bit-identical to the TypeScript loops kept below as `…Ts`, which
 * a test checks). `SAELAB_OPTIM_KERNELS=ts` forces the TypeScript loops.
 */
const useWasm = () => process.env.SAELAB_OPTIM_KERNELS !== 'ts' && wasmRowKernelsAvailable();

/** Euclidean norm of each row of a [m, d] matrix. */
export function rowNorms(W: Tensor): Float32Array {
  const [m, d] = dims2(W, 'rowNorms: W');
  const out = new Float32Array(m);
  const w = W.data;
  for (let i = 0; i < m; i++) out[i] = Math.sqrt(rowDot(w, i * d, w, i * d, d));
  return out;
}

/** Σ_j a[ao+j]·b[bo+j] in float64. */
function rowDot(a: Float32Array, ao: number, b: Float32Array, bo: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) s += a[ao + j]! * b[bo + j]!;
  return s;
}

/**
 * Rescales each row of W in place to norm `target` (TopK / JumpReLU / Gated constraint ‖W_dec,i‖ = 1).
 * Returns the norms before rescaling.
 */
export function normalizeRows(W: Tensor, target = 1): Float32Array {
  return Float32Array.from(normalizeRows64(W, target, 'normalizeRows'));
}

/** normalizeRows with the norms kept in float64, so folding scales the encoder by exactly what it divided by. */
function normalizeRows64(W: Tensor, target: number, fn: string): Float64Array {
  if (!Number.isFinite(target) || target <= 0) throw new Error(`${fn}: target must be finite and > 0, got ${target}`);
  const [m, d] = dims2(W, `${fn}: W`);
  if (useWasm()) return normalizeRowsWasm(W.data, m, d, target);
  return normalizeRows64Ts(W.data, m, d, target);
}

/** The row normalisation loop in TypeScript (the WebAssembly kernel's reference): returns the norms before. */
export function normalizeRows64Ts(w: Float32Array, m: number, d: number, target: number): Float64Array {
  const norms = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    const n = Math.sqrt(rowDot(w, i * d, w, i * d, d));
    norms[i] = n;
    if (n === 0) continue;
    const s = target / n;
    for (let j = i * d; j < (i + 1) * d; j++) w[j] = w[j]! * s;
  }
  return norms;
}

/**
 * Removes from each gradient row dW_i its component parallel to W_i, in place:
 *   dW_i ← dW_i − (dW_i·W_i / ‖W_i‖²) W_i
 * so a step along dW keeps ‖W_i‖ unchanged to first order (Gao et al. 2024, Bricken et al. 2023).
 */
export function removeParallelGradient(W: Tensor, dW: Tensor): void {
  const [m, d] = dims2(W, 'removeParallelGradient: W');
  assertShape(dW, [m, d], 'removeParallelGradient: dW');
  if (useWasm()) projectRowsWasm(W.data, dW.data, m, d);
  else removeParallelGradientTs(W.data, dW.data, m, d);
}

/** The projection loop in TypeScript (the WebAssembly kernel's reference). */
export function removeParallelGradientTs(w: Float32Array, g: Float32Array, m: number, d: number): void {
  for (let i = 0; i < m; i++) {
    const o = i * d;
    const nn = rowDot(w, o, w, o, d);
    if (nn === 0) continue;
    const c = rowDot(g, o, w, o, d) / nn;
    for (let j = 0; j < d; j++) g[o + j] = g[o + j]! - c * w[o + j]!;
  }
}

export interface FoldDecoderNormsArgs {
  /** Encoder [d, m]: column i is scaled by n_i. */
  W_enc: Tensor;
  /** Decoder [m, d]: row i is divided by n_i (becomes unit norm). */
  W_dec: Tensor;
  /** Per-latent [m] vectors scaled by n_i: the encoder bias, and e.g. a JumpReLU threshold or Gated b_gate/b_mag. */
  perLatent?: Tensor[];
}

/**
 * Moves decoder-row norms into the encoder, in place: with n_i = ‖W_dec,i‖,
 *   W_dec,i /= n_i,  W_enc[:, i] *= n_i,  v[i] *= n_i for each per-latent vector v.
 * Every pre-activation (and every threshold it is compared with) is multiplied by n_i > 0, so for any
 * positively homogeneous activation (ReLU, JumpReLU with its threshold scaled, the Gated gate) latent i is
 * multiplied by n_i and f_i·W_dec,i — hence decode(encode(x)) — is unchanged. Not valid for TopK unless all
 * n_i are equal: rescaling pre-activations by different factors can change which k are largest.
 * Returns the norms n_i (zero rows are skipped).
 */
export function foldDecoderNorms({ W_enc, W_dec, perLatent = [] }: FoldDecoderNormsArgs): Float32Array {
  const [m, d] = dims2(W_dec, 'foldDecoderNorms: W_dec');
  assertShape(W_enc, [d, m], 'foldDecoderNorms: W_enc');
  perLatent.forEach((v, k) => assertShape(v, [m], `foldDecoderNorms: perLatent[${k}]`));
  const norms = normalizeRows64(W_dec, 1, 'foldDecoderNorms');
  const e = W_enc.data;
  for (let r = 0; r < d; r++) {
    const o = r * m;
    for (let i = 0; i < m; i++) if (norms[i] !== 0) e[o + i] = e[o + i]! * norms[i]!;
  }
  for (const v of perLatent) for (let i = 0; i < m; i++) if (norms[i] !== 0) v.data[i] = v.data[i]! * norms[i]!;
  return Float32Array.from(norms);
}
