/**
 * SAE linear algebra shared by every architecture: the affine encoder/decoder, the reconstruction loss and the
 * backward passes through them. An architecture file composes these with its own nonlinearity and penalty.
 *
 * Conventions (docs/specs/sae.md): x [B, d], W_enc [d, m], W_dec [m, d]; pre = (x − b_dec)·W_enc + b_enc;
 * x̂ = f·W_dec + b_dec; reconstruction loss = Σ_d (x − x̂)² averaged over the batch.
 *
 * Sparsity (docs/performance.md): latents f, and every gradient with f's pattern (∂L/∂f, ∂L/∂pre), are
 * `SparseRows` (CSR). Only the encoder GEMM is inherently dense. Each op below runs its products either with the
 * sparse kernels (gather for x̂, scatter-add for dW_dec and dW_enc, sampled dot products for ∂L/∂f: cost ∝ L0) or,
 * when the latents are dense enough that a GEMM is cheaper, by densifying and calling the GEMM engine; the
 * workspace's `mode` chooses ('auto' by density, or forced 'sparse' / 'dense' — the dense path is the reference
 * the tests compare against). Outputs live in the context's workspace and are reused across steps.
 */
import { columnSums, subRowVector } from '../kernels.js';
import type { GemmEngine } from '../gemm.js';
import type { Rng } from '../rng.js';
import type { LossAndGrads, SaeContext } from './contract.js';
import { type Params, type Tensor, dims2, zeros } from '../tensor.js';
import { SparseRows, sampledDotsTs, scatterOuterTs, sparseColumnSums, sparseMatmulTs, transposeInto } from '../fast/csr.js';
import { rowsAbove, topKRows } from '../fast/selection.js';
import { sampledDotsWasm, scatterOuterWasm, sparseMatmulWasm, wasmKernelsAvailable } from '../fast/wasm.js';
import { Workspace, workspaceOf } from '../fast/workspace.js';

/** What the architectures' `lossAndGrads` return: the contract's fields with the sparse latents always present. */
export type SparseLossAndGrads<P extends string = string> = LossAndGrads<P> & { activeLatents: SparseRows };

/** The parameters of the affine encoder and decoder every architecture starts from (SAELens names). */
export type DictionaryParams = 'W_enc' | 'W_dec' | 'b_enc' | 'b_dec';

/** Builds the result with `latents` as a lazy dense view of `f` (a [B, m] matrix is 64 MiB at the bench shape). */
export function lossAndGradsResult<P extends string>(out: Omit<LossAndGrads<P>, 'latents'>, f: SparseRows): SparseLossAndGrads<P> {
  let dense: Tensor | null = null;
  return Object.defineProperty({ ...out, activeLatents: f } as SparseLossAndGrads<P>, 'latents', {
    enumerable: true,
    get: () => (dense ??= f.toDense()),
  });
}

/** Same engine and settings, fresh buffers: for results the caller keeps (encode/decode). */
export function freshContext(ctx: SaeContext): SaeContext {
  return { engine: ctx.engine, workspace: workspaceOf(ctx).fresh() };
}

/** The encoder input: x − b_dec when apply_b_dec_to_input, else x itself. */
export function encoderInput(x: Tensor, bDec: Tensor, applyBDec: boolean, ctx?: SaeContext): Tensor {
  if (!applyBDec) return x;
  if (!ctx?.workspace) return subRowVector(x, bDec);
  const [rows, d] = dims2(x, 'encoderInput x');
  const out = ctx.workspace.tensor('input', [rows, d]);
  const a = x.data;
  const b = bDec.data;
  const o = out.data;
  for (let r = 0; r < rows; r++) for (let j = 0, q = r * d; j < d; j++, q++) o[q] = a[q]! - b[j]!;
  return out;
}

/** pre = input·W_enc (+ b_enc): the one dense product of a step, written into the workspace buffer `key`. */
export async function encoderPre(ctx: SaeContext, input: Tensor, wEnc: Tensor, bEnc: Tensor | null, key = 'pre'): Promise<Tensor> {
  const ws = workspaceOf(ctx);
  ws.phase('encode');
  const [rows] = dims2(input, 'encoder input');
  const [, m] = dims2(wEnc, 'W_enc');
  return ctx.engine.gemm(input, wEnc, { ...(bEnc ? { bias: bEnc } : {}), out: ws.tensor(key, [rows, m]) });
}

/**
 * Inference through a threshold: f = pre ⊙ H(pre − θ) with pre = (x − b_dec)·W_enc + b_enc — ReLU (θ = 0),
 * JumpReLU (θ per latent) and the batch-threshold inference of BatchTopK (one θ). Fresh buffers (the caller keeps f).
 */
export async function encodeAboveThreshold(
  p: Params<'W_enc' | 'b_enc' | 'b_dec'>,
  x: Tensor,
  cfg: { applyBDecToInput: boolean },
  ctx: SaeContext,
  threshold: Float32Array | number,
): Promise<Tensor> {
  const c = freshContext(ctx);
  const pre = await encoderPre(c, encoderInput(x, p.b_dec, cfg.applyBDecToInput, c), p.W_enc, p.b_enc);
  return rowsAbove(pre, threshold).toDense();
}

/** The sparse kernels in use (WASM SIMD when available and rows fit its 16-float blocking, else TypeScript). */
function kernelsFor(ws: Workspace, d: number) {
  const wasm = ws.kernels === 'wasm' && wasmKernelsAvailable(d);
  return wasm
    ? { matmul: sparseMatmulWasm, dots: sampledDotsWasm, scatter: scatterOuterWasm }
    : { matmul: sparseMatmulTs, dots: sampledDotsTs, scatter: scatterOuterTs };
}

/**
 * TopK encoder: f = ReLU(TopK_k(input·W_enc + b_enc)) as CSR rows (column order), and the full pre-activations only
 * when `keepPre` (AuxK needs them). Engines with a fused affine+top-k kernel (onnxruntime) never hand the
 * [B, m] product back to JS; others — and the workspace's 'dense' reference mode — use encoderPre + topKRows.
 */
export async function encoderTopK(
  ctx: SaeContext,
  input: Tensor,
  wEnc: Tensor,
  bEnc: Tensor,
  k: number,
  keepPre: boolean,
  key = 'f',
): Promise<{ f: SparseRows; pre: Tensor | null }> {
  const ws = workspaceOf(ctx);
  const [rows] = dims2(input, 'encoder input');
  const [, m] = dims2(wEnc, 'W_enc');
  const f = ws.sparseRows(key, rows, m);
  if (!ctx.engine.affineTopK || ws.mode === 'dense') {
    const pre = await encoderPre(ctx, input, wEnc, bEnc);
    return { f: topKRows(pre, k, { out: f }), pre: keepPre ? pre : null };
  }
  ws.phase('encode');
  const { values, indices, product } = await ctx.engine.affineTopK(input, wEnc, bEnc, k, keepPre);
  const chosen = new Int32Array(k);
  for (let r = 0; r < rows; r++) {
    // keep the positive ones (the ReLU), in column order like topKRows
    let n = 0;
    for (let s = r * k; s < (r + 1) * k; s++) if (values[s]! > 0) chosen[n++] = s;
    const row = chosen.subarray(0, n).sort((x, y) => indices[x]! - indices[y]!);
    f.reserve(n);
    for (const s of row) f.push(indices[s]!, values[s]!);
    f.endRow();
  }
  return { f, pre: product };
}

/**
 * x̂ = f·W_dec + b_dec (b_dec may be null, e.g. AuxK's residual prediction). With sparse f this is a gather of
 * L0 decoder rows per example; dense f (or a dense-enough sparse f) goes to the GEMM engine.
 */
export async function decodeAffine(
  ctxOrEngine: SaeContext | GemmEngine,
  f: Tensor | SparseRows,
  wDec: Tensor,
  bDec: Tensor | null,
  key = 'xHat',
): Promise<Tensor> {
  const ctx: SaeContext = 'gemm' in ctxOrEngine ? { engine: ctxOrEngine } : ctxOrEngine;
  const ws = workspaceOf(ctx);
  ws.phase('decode');
  const [m, d] = dims2(wDec, 'W_dec');
  if (!(f instanceof SparseRows)) return ctx.engine.gemm(f, wDec, bDec ? { bias: bDec } : {});
  if (f.cols !== m) throw new Error(`decode: latents have ${f.cols} columns but W_dec has ${m} rows`);
  const out = ws.tensor(key, [f.rows, d]);
  if (ws.useSparse(f)) {
    kernelsFor(ws, d).matmul(f, wDec, bDec, out.data);
    return out;
  }
  const dense = f.toDense(ws.buffer('dense.f', f.rows * m));
  return ctx.engine.gemm(dense, wDec, { ...(bDec ? { bias: bDec } : {}), out });
}

/** Σ_d (x − x̂)² averaged over rows, and its gradient w.r.t. x̂: 2(x̂ − x)/B. */
export function reconstructionLoss(x: Tensor, xHat: Tensor, ctx?: SaeContext, key = 'dXHat'): { loss: number; dXHat: Tensor } {
  const [rows] = dims2(x, 'x');
  const dXHat = ctx?.workspace ? ctx.workspace.tensor(key, x.shape) : zeros(x.shape);
  const a = x.data;
  const b = xHat.data;
  const g = dXHat.data;
  let s = 0;
  const scale = 2 / rows;
  for (let i = 0; i < a.length; i++) {
    const diff = b[i]! - a[i]!;
    s += diff * diff;
    g[i] = scale * diff;
  }
  return { loss: s / rows, dXHat };
}

/**
 * G·Wᵀ sampled at `pattern`'s entries: out[r, j] = G[r, :]·W[j, :] for each stored (r, j). With G = dX̂ and
 * W = W_dec this is ∂L/∂f where it is needed (the active latents, or e.g. JumpReLU's threshold window).
 */
export async function sampledDots(ctx: SaeContext, G: Tensor, W: Tensor, pattern: SparseRows, key: string): Promise<SparseRows> {
  const ws = workspaceOf(ctx);
  const [m, d] = dims2(W, 'sampledDots W');
  const out = pattern.withValues(ws.buffer(key, pattern.nnz));
  if (ws.useSparse(pattern)) {
    kernelsFor(ws, d).dots(G, W, pattern, out.values);
    return out;
  }
  const full = await ctx.engine.gemm(G, W, { transB: true, out: ws.tensor('dense.dots', [pattern.rows, m]) });
  const { rowPtr, indices } = pattern;
  for (let r = 0; r < pattern.rows; r++)
    for (let e = rowPtr[r]!, end = rowPtr[r + 1]!; e < end; e++) out.values[e] = full.data[r * m + indices[e]!]!;
  return out;
}

/**
 * Backward through x̂ = f·W_dec + b_dec: dW_dec = fᵀ·dX̂ (scatter-add of dX̂ rows into the active latents' rows),
 * db_dec = Σ_rows dX̂, and (if wanted) df = dX̂·W_decᵀ at f's entries. `key` prefixes the output buffers so an
 * architecture can run it twice in one step (e.g. AuxK).
 */
export async function decoderBackward(
  ctx: SaeContext,
  f: SparseRows,
  dXHat: Tensor,
  wDec: Tensor,
  opts: { wantDf?: boolean; key?: string } = {},
): Promise<{ dWDec: Tensor; dBDec: Tensor; dF: SparseRows | null }> {
  const ws = workspaceOf(ctx);
  ws.phase('backward');
  const key = opts.key ?? 'dec';
  const [m, d] = dims2(wDec, 'W_dec');
  const dF = opts.wantDf === false ? null : await sampledDots(ctx, dXHat, wDec, f, `${key}.dF`);
  let dWDec: Tensor;
  if (ws.useSparse(f)) {
    dWDec = ws.zeros(`${key}.dWDec`, [m, d]);
    kernelsFor(ws, d).scatter(f, dXHat, dWDec.data);
  } else {
    const dense = f.toDense(ws.buffer('dense.f', f.rows * m));
    dWDec = await ctx.engine.gemm(dense, dXHat, { transA: true, out: ws.tensor(`${key}.dWDec`, [m, d]) });
  }
  return { dWDec, dBDec: columnSums(dXHat), dF };
}

/**
 * Backward through pre = input·W_enc + b_enc with input = x − b_dec, for a sparse ∂L/∂pre:
 * dW_enc = inputᵀ·dPre, db_enc = Σ_rows dPre, and the input path's contribution to db_dec,
 * −Σ_rows dPre·W_encᵀ = −(Σ_rows dPre)·W_encᵀ (a vector–matrix product, no extra GEMM).
 * Sparse path: dW_encᵀ [m, d] is accumulated by scatter-add (contiguous rows), then transposed once.
 */
export async function encoderBackward(
  ctx: SaeContext,
  input: Tensor,
  dPreParts: SparseRows | SparseRows[],
  wEnc: Tensor,
  applyBDec: boolean,
): Promise<{ dWEnc: Tensor; dBEnc: Tensor; dBDecFromInput: Tensor | null }> {
  const ws = workspaceOf(ctx);
  ws.phase('backward');
  const [d, m] = dims2(wEnc, 'W_enc');
  // ∂L/∂pre may come in parts with different patterns (TopK: main + AuxK); the products are linear, so sum them.
  const parts = Array.isArray(dPreParts) ? dPreParts : [dPreParts];
  let dWEnc: Tensor;
  if (parts.every((p) => ws.useSparse(p))) {
    const accT = ws.zeros('enc.dWEncT', [m, d]);
    for (const p of parts) kernelsFor(ws, d).scatter(p, input, accT.data);
    dWEnc = ws.tensor('enc.dWEnc', [d, m]);
    transposeInto(accT.data, m, d, dWEnc.data);
  } else {
    const dense = ws.zeros('dense.dPre', [input.shape[0]!, m]);
    for (const p of parts) addSparseInto(p, dense.data);
    dWEnc = await ctx.engine.gemm(input, dense, { transA: true, out: ws.tensor('enc.dWEnc', [d, m]) });
  }
  const dBEnc = zeros([m]);
  for (const p of parts) accumulate(dBEnc, sparseColumnSums(p));
  if (!applyBDec) return { dWEnc, dBEnc, dBDecFromInput: null };
  const out = zeros([d]);
  for (let i = 0; i < d; i++) {
    let s = 0;
    const o = i * m;
    for (let j = 0; j < m; j++) s += wEnc.data[o + j]! * dBEnc.data[j]!;
    out.data[i] = -s;
  }
  return { dWEnc, dBEnc, dBDecFromInput: out };
}

/** dense += s (dense is the [rows, cols] row-major matrix). */
function addSparseInto(s: SparseRows, dense: Float32Array): void {
  const { rowPtr, indices, values, cols } = s;
  for (let r = 0; r < s.rows; r++)
    for (let e = rowPtr[r]!, end = rowPtr[r + 1]!; e < end; e++) dense[r * cols + indices[e]!] += values[e]!;
}

/** a += b elementwise (for summing gradient contributions). */
export function accumulate(a: Tensor, b: Tensor | null): Tensor {
  if (!b) return a;
  if (a.data.length !== b.data.length) throw new Error(`accumulate: shapes [${a.shape}] and [${b.shape}] differ`);
  for (let i = 0; i < a.data.length; i++) a.data[i] += b.data[i]!;
  return a;
}

/**
 * The shared initialisation (docs/specs/sae.md): W_dec rows are random directions of norm `rowNorm`, W_enc = W_decᵀ,
 * b_enc and b_dec zero.
 */
export function initTiedDictionary(dIn: number, dSae: number, rng: Rng, rowNorm = 1): Params<DictionaryParams> {
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
 * Fold the input normalisation x_train = x / C into the weights so the SAE works on raw activations (docs/specs/sae.md):
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
