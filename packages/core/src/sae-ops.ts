/**
 * SAE linear algebra shared by every architecture: the affine encoder/decoder, the reconstruction loss and the
 * backward passes through them. An architecture file composes these with its own nonlinearity and penalty.
 *
 * Conventions (sae.md): x [B, d], W_enc [d, m], W_dec [m, d]; pre = (x − b_dec)·W_enc + b_enc;
 * x̂ = f·W_dec + b_dec; reconstruction loss = Σ_d (x − x̂)² averaged over the batch.
 */
import type { GemmEngine } from './gemm.js';
import { addRowVectorInPlace, columnSums, subRowVector } from './kernels.js';
import type { Rng } from './rng.js';
import { type Params, type Tensor, dims2, zeros } from './tensor.js';

/** The encoder input: x − b_dec when apply_b_dec_to_input, else x itself. */
export function encoderInput(x: Tensor, bDec: Tensor, applyBDec: boolean): Tensor {
  return applyBDec ? subRowVector(x, bDec) : x;
}

/** input·W + b. */
export async function affine(engine: GemmEngine, input: Tensor, W: Tensor, b: Tensor): Promise<Tensor> {
  return addRowVectorInPlace(await engine.gemm(input, W), b);
}

/** x̂ = f·W_dec + b_dec. */
export async function decodeAffine(engine: GemmEngine, f: Tensor, wDec: Tensor, bDec: Tensor): Promise<Tensor> {
  return affine(engine, f, wDec, bDec);
}

/** Σ_d (x − x̂)² averaged over rows, and its gradient w.r.t. x̂: 2(x̂ − x)/B. */
export function reconstructionLoss(x: Tensor, xHat: Tensor): { loss: number; dXHat: Tensor } {
  const [rows] = dims2(x, 'x');
  const dXHat = zeros(x.shape);
  let s = 0;
  const scale = 2 / rows;
  for (let i = 0; i < x.data.length; i++) {
    const diff = xHat.data[i]! - x.data[i]!;
    s += diff * diff;
    dXHat.data[i] = scale * diff;
  }
  return { loss: s / rows, dXHat };
}

/**
 * Backward through x̂ = f·W_dec + b_dec: dW_dec = fᵀ·dX̂, db_dec = Σ_rows dX̂, and (if wanted) df = dX̂·W_decᵀ.
 */
export async function decoderBackward(
  engine: GemmEngine,
  f: Tensor,
  dXHat: Tensor,
  wDec: Tensor,
  wantDf = true,
): Promise<{ dWDec: Tensor; dBDec: Tensor; dF: Tensor | null }> {
  const [dWDec, dF] = await Promise.all([
    engine.gemm(f, dXHat, { transA: true }),
    wantDf ? engine.gemm(dXHat, wDec, { transB: true }) : Promise.resolve(null),
  ]);
  return { dWDec, dBDec: columnSums(dXHat), dF };
}

/**
 * Backward through pre = input·W_enc + b_enc with input = x − b_dec:
 * dW_enc = inputᵀ·dPre, db_enc = Σ_rows dPre, and the input path's contribution to db_dec,
 * −Σ_rows dPre·W_encᵀ = −(Σ_rows dPre)·W_encᵀ (a vector–matrix product, no extra GEMM).
 */
export async function encoderBackward(
  engine: GemmEngine,
  input: Tensor,
  dPre: Tensor,
  wEnc: Tensor,
  applyBDec: boolean,
): Promise<{ dWEnc: Tensor; dBEnc: Tensor; dBDecFromInput: Tensor | null }> {
  const dWEnc = await engine.gemm(input, dPre, { transA: true });
  const dBEnc = columnSums(dPre);
  if (!applyBDec) return { dWEnc, dBEnc, dBDecFromInput: null };
  const [d, m] = dims2(wEnc, 'W_enc');
  const out = zeros([d]);
  for (let i = 0; i < d; i++) {
    let s = 0;
    const o = i * m;
    for (let j = 0; j < m; j++) s += wEnc.data[o + j]! * dBEnc.data[j]!;
    out.data[i] = -s;
  }
  return { dWEnc, dBEnc, dBDecFromInput: out };
}

/** a += b elementwise (for summing gradient contributions). */
export function accumulate(a: Tensor, b: Tensor | null): Tensor {
  if (!b) return a;
  if (a.data.length !== b.data.length) throw new Error(`accumulate: shapes [${a.shape}] and [${b.shape}] differ`);
  for (let i = 0; i < a.data.length; i++) a.data[i] += b.data[i]!;
  return a;
}

/**
 * The shared initialisation (sae.md): W_dec rows are random directions of norm `rowNorm`, W_enc = W_decᵀ,
 * b_enc and b_dec zero.
 */
export function initTiedDictionary(dIn: number, dSae: number, rng: Rng, rowNorm = 1): Params {
  const wDec = zeros([dSae, dIn]);
  rng.fillNormal(wDec.data);
  for (let i = 0; i < dSae; i++) {
    let s = 0;
    for (let j = 0; j < dIn; j++) s += wDec.data[i * dIn + j]! ** 2;
    const scale = rowNorm / Math.sqrt(s);
    for (let j = 0; j < dIn; j++) wDec.data[i * dIn + j] *= scale;
  }
  const wEnc = zeros([dIn, dSae]);
  for (let i = 0; i < dSae; i++) for (let j = 0; j < dIn; j++) wEnc.data[j * dSae + i] = wDec.data[i * dIn + j]!;
  return { W_enc: wEnc, W_dec: wDec, b_enc: zeros([dSae]), b_dec: zeros([dIn]) };
}

/**
 * Fold the input normalisation x_train = x / C into the weights so the SAE works on raw activations (sae.md):
 * W_enc' = W_enc / C, W_dec' = C·W_dec, b_dec' = C·b_dec; every other tensor (b_enc, thresholds, gates) is
 * unchanged because the pre-activations are unchanged. Returns new tensors; works for all four architectures.
 */
export function foldInputScale(params: Params, scale: number): Params {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new Error(`foldInputScale: scale must be a positive finite number, got ${scale}`);
  const factor: Record<string, number> = { W_enc: 1 / scale, W_dec: scale, b_dec: scale };
  const out: Params = {};
  for (const [name, t] of Object.entries(params)) {
    const f = factor[name] ?? 1;
    out[name] = { data: t.data.map((v) => v * f), shape: [...t.shape] };
  }
  return out;
}
