/**
 * TopK SAE with the AuxK loss — Gao et al. 2024, "Scaling and evaluating sparse autoencoders".
 * All of this architecture's math is in this file; affine maps and their backward passes come from core.
 *
 *   pre = (x − b_dec)·W_enc + b_enc,   f = ReLU(TopK_k(pre)),   x̂ = f·W_dec + b_dec        (eq. 3)
 *   L   = ‖x − x̂‖² + α · AuxK
 * AuxK (section 2.4 / appendix A.2): a latent is dead if it has not fired in the last N_dead tokens. With
 * e = x − x̂ (detached), take the top-k_aux ReLU'd pre-activations among dead latents only, decode them without b_dec
 * to ê, and normalise by the residual's variance over the batch (the paper's "normalized MSE"):
 *   AuxK = Σ_rows ‖e − ê‖² / Σ_rows ‖e − ē‖²,   ē = batch mean of e.
 * This is openai/sparse_autoencoder's `normalized_mse` (kernels.py) and dictionary_learning's TopKTrainer
 * `get_auxiliary_loss` (trainers/top_k.py): scale-free, so α = 1/32 weighs it against the MSE the same way at any
 * input scale. α = 1/32, k_aux = d_in / 2. SAELens's variant (`auxNormalize: false, auxRelu: false`) uses the raw
 * pre-activations and no normalisation, scaled by min(n_dead / k_aux, 1); kept as an option. Once the MSE is small,
 * that form is much weaker than the normalised one (its size follows ‖e‖², the normalised one is O(1)).
 * Sparsity is exactly k per row; decoder rows are kept at unit norm by the trainer.
 */
import { z } from 'zod';
import {
  type LossAndGrads,
  type Params,
  type SaeContext,
  type Tensor,
  type SaeArchitecture,
  type SparseRows,
  accumulate,
  baseSaeConfigSchema,
  decodeAffine,
  decoderBackward,
  encoderBackward,
  encoderInput,
  encoderTopK,
  freshContext,
  initTiedDictionary,
  lossAndGradsResult,
  reconstructionLoss,
  topKRows,
  workspaceOf,
} from '@saelab/core';

/** TopK's fields (BatchTopK extends them). */
export const topKFields = baseSaeConfigSchema.extend({
  /** Active latents per row (exact L0). */
  k: z.number().int().positive(),
  /** Latents used by the AuxK reconstruction; default d_in / 2. */
  kAux: z.number().int().positive().optional(),
  /** AuxK coefficient α. */
  auxCoefficient: z.number().nonnegative().default(1 / 32),
  /** A latent that has not fired for this many training tokens is dead (paper: 10M; scale with the data). */
  deadTokensThreshold: z.number().int().positive().default(10_000_000),
  /** ReLU the dead latents' pre-activations before AuxK (OpenAI, dictionary_learning) instead of using them raw (SAELens). */
  auxRelu: z.boolean().default(true),
  /**
   * Divide AuxK by the residual's batch variance Σ‖e − ē‖² (OpenAI, dictionary_learning; default) instead of the
   * SAELens form (unnormalised, × min(n_dead / k_aux, 1)).
   */
  auxNormalize: z.boolean().default(true),
});
/** k latents must exist: the check both TopK and BatchTopK configs apply after their fields. */
export const kWithinDictionary = <C extends { k: number; dSae: number }>(c: C) => c.k <= c.dSae;
export const kWithinDictionaryIssue = { message: 'k must be at most d_sae', path: ['k'] };
export const topKConfigSchema = topKFields.refine(kWithinDictionary, kWithinDictionaryIssue);
export type TopKConfig = z.infer<typeof topKConfigSchema>;

/** Training state: tokens since each latent last fired (for dead-latent detection). */
export interface TopKState {
  tokensSinceFired: Float64Array;
}

export const topK: SaeArchitecture<TopKConfig, TopKState> = {
  name: 'topk',
  saelensArchitecture: 'topk',
  sparsityKnob: 'k',
  decoderConstraint: () => 'unit-norm',
  configSchema: topKConfigSchema,
  // Paper: Adam (0.9, 0.999), no L1 (so no λ warm-up), unit-norm decoder with gradient projection. The lr follows
  // the paper's scaling with the dictionary size (Figure 3), lr = 2e-4 / √(m / 2¹⁴), as dictionary_learning's
  // TopKTrainer picks it when no lr is given (≈ 1.1e-3 at m = 512); gradient norm clipped at 1 (dictionary_learning).
  recipe: {
    optimizer: { kind: 'adam', lr: ({ dSae }) => 2e-4 / Math.sqrt(dSae / 2 ** 14), beta1: 0.9, beta2: 0.999 },
    lrSchedule: 'constant',
    lrWarmupFraction: 0.01,
    sparsityWarmupFraction: 0,
    gradClip: 1,
    defaultSparsity: 32,
  },

  paramShapes: ({ dIn, dSae }) => ({ W_enc: [dIn, dSae], W_dec: [dSae, dIn], b_enc: [dSae], b_dec: [dIn] }),

  init: (cfg, rng) => initTiedDictionary(cfg.dIn, cfg.dSae, rng),

  async encode(p, x, cfg, ctx) {
    const c = freshContext(ctx);
    const { f } = await encoderTopK(c, encoderInput(x, p.b_dec!, cfg.applyBDecToInput, c), p.W_enc!, p.b_enc!, cfg.k, false);
    return f.toDense();
  },

  decode: (p, f, _cfg, { engine }) => decodeAffine(engine, f, p.W_dec!, p.b_dec!),

  initTrainState: (cfg) => ({ tokensSinceFired: new Float64Array(cfg.dSae) }),
  // The dead-latent counters are part of an exact resume: without them AuxK would be off for N_dead tokens.
  exportTrainState: (state) => ({ tokensSinceFired: Array.from(state.tokensSinceFired) }),
  importTrainState: (cfg, json) => {
    const t = z.array(z.number().nonnegative()).length(cfg.dSae).parse(json.tokensSinceFired);
    return { tokensSinceFired: Float64Array.from(t) };
  },

  async lossAndGrads(p, x, cfg, _lambda, state, ctx): Promise<LossAndGrads> {
    // AuxK needs the dense pre-activations only if some latent can be dead after this batch.
    const auxPossible = auxKPossible(state, cfg, x.shape[0]!);
    const input = encoderInput(x, p.b_dec!, cfg.applyBDecToInput, ctx);
    // f = ReLU(TopK(pre)): k entries per row (fewer if some of the top k are ≤ 0).
    const { f, pre } = await encoderTopK(ctx, input, p.W_enc!, p.b_enc!, cfg.k, auxPossible);
    return lossAndGradsResult(await lossFromSelectedLatents(ctx, p, x, input, f, pre, state, cfg), f);
  },

  toSaelensConfig: (cfg) => topKSaelensFields(cfg),
  fromSaelensConfig: (json) => topKConfigSchema.parse(topKFieldsFromSaelens(json)),
};

/**
 * Everything after the selection, shared by TopK and BatchTopK: decode, reconstruction loss, AuxK on the dead latents,
 * and the backward pass. ∂f/∂pre is 1 at the kept entries and 0 elsewhere (the selection itself has no gradient),
 * so ∂L/∂pre is ∂L/∂f on f's pattern. `pre` is needed whenever a latent can be dead (see `auxKPossible`).
 */
export async function lossFromSelectedLatents(
  ctx: SaeContext,
  p: Params,
  x: Tensor,
  input: Tensor,
  f: SparseRows,
  pre: Tensor | null,
  state: TopKState,
  cfg: TopKConfig,
): Promise<Omit<LossAndGrads, 'latents'>> {
  const xHat = await decodeAffine(ctx, f, p.W_dec!, p.b_dec!);
  const { loss: mse, dXHat } = reconstructionLoss(x, xHat, ctx);
  const dec = await decoderBackward(ctx, f, dXHat, p.W_dec!);
  const dPre: SparseRows[] = [dec.dF!];
  const aux = await deadLatentsAuxK(ctx, p, x, xHat, pre, f, state, cfg);
  if (aux) {
    accumulate(dec.dWDec, aux.dWDec);
    dPre.push(aux.dPre);
  }
  const auxk = aux?.auxk ?? 0;
  const enc = await encoderBackward(ctx, input, dPre, p.W_enc!, cfg.applyBDecToInput);
  return {
    loss: mse + auxk,
    parts: { mse, auxk },
    grads: { W_enc: enc.dWEnc, b_enc: enc.dBEnc, W_dec: dec.dWDec, b_dec: accumulate(dec.dBDec, enc.dBDecFromInput) },
    xHat,
  };
}

/** cfg.json fields of TopK's settings, and back (shared with BatchTopK). */
export const topKSaelensFields = (cfg: TopKConfig) => ({
  k: cfg.k,
  k_aux: cfg.kAux ?? null,
  aux_coefficient: cfg.auxCoefficient,
  dead_tokens_threshold: cfg.deadTokensThreshold,
  aux_relu: cfg.auxRelu,
  aux_normalize: cfg.auxNormalize,
});
export const topKFieldsFromSaelens = (json: Record<string, unknown>) => ({
  dIn: json.d_in,
  dSae: json.d_sae,
  applyBDecToInput: json.apply_b_dec_to_input ?? true,
  k: json.k,
  kAux: json.k_aux ?? undefined,
  auxCoefficient: json.aux_coefficient ?? undefined,
  deadTokensThreshold: json.dead_tokens_threshold ?? undefined,
  auxRelu: json.aux_relu ?? undefined,
  auxNormalize: json.aux_normalize ?? undefined,
});

/** Whether some latent can count as dead after a batch of `rows` (only then is AuxK computed). */
export function auxKPossible(state: TopKState, cfg: TopKConfig, rows: number): boolean {
  return cfg.auxCoefficient > 0 && state.tokensSinceFired.some((t) => t + rows >= cfg.deadTokensThreshold);
}

/**
 * Dead-latent bookkeeping (tokens since each latent last fired, updated from this batch's latents f), then the AuxK
 * term on the dead latents (Gao et al. 2024, A.2): its value (α · c · Σ ‖e − ê‖², c the normaliser above), its W_dec gradient, and
 * its gradient w.r.t. the pre-activations (sparse, on the dead latents picked). Null when no latent is dead.
 * `pre` must be the dense pre-activations whenever `auxKPossible` was true for this batch.
 */
async function deadLatentsAuxK(
  ctx: SaeContext,
  p: Params,
  x: Tensor,
  xHat: Tensor,
  pre: Tensor | null,
  f: SparseRows,
  state: TopKState,
  cfg: TopKConfig,
): Promise<{ auxk: number; dWDec: Tensor; dPre: SparseRows } | null> {
  const ws = workspaceOf(ctx);
  const rows = x.shape[0]!;
  const m = cfg.dSae;
  const since = state.tokensSinceFired;
  const fired = new Uint8Array(m);
  for (let e = 0; e < f.nnz; e++) fired[f.indices[e]!] = 1;
  const deadList: number[] = [];
  for (let j = 0; j < m; j++) {
    since[j] = fired[j] ? 0 : since[j]! + rows;
    if (since[j]! >= cfg.deadTokensThreshold) deadList.push(j);
  }
  const nDead = deadList.length;
  if (nDead === 0 || cfg.auxCoefficient === 0) return null;
  if (!pre) throw new Error('deadLatentsAuxK: latents are dead but the dense pre-activations were not computed');
  const kAux = cfg.kAux ?? Math.max(1, Math.floor(cfg.dIn / 2));
  const k = Math.min(kAux, nDead);
  // Top-k_aux pre-activations among the dead latents only (none of them fired in this batch).
  const fAux = topKRows(pre, k, { out: ws.sparseRows('fAux', rows, m), columns: Int32Array.from(deadList), positiveOnly: cfg.auxRelu });
  const eHat = await decodeAffine(ctx, fAux, p.W_dec!, null, 'eHat'); // no b_dec: it predicts the residual e
  // AuxK = c · Σ_rows ‖e − ê‖² with e = x − x̂ detached, so ∂AuxK/∂ê = 2c·(ê − e). c is 1 / Σ_rows ‖e − ē‖² when
  // normalised (a constant: e is detached), else min(n_dead / k_aux, 1) / B (SAELens).
  const c = cfg.auxNormalize ? 1 / Math.max(residualSumSquares(x, xHat), 1e-30) : Math.min(nDead / kAux, 1) / rows;
  const dEHat = ws.tensor('dEHat', eHat.shape);
  let s = 0;
  for (let i = 0; i < eHat.data.length; i++) {
    const diff = eHat.data[i]! - (x.data[i]! - xHat.data[i]!);
    s += diff * diff;
    dEHat.data[i] = cfg.auxCoefficient * c * 2 * diff;
  }
  const aux = await decoderBackward(ctx, fAux, dEHat, p.W_dec!, { key: 'aux' });
  return { auxk: cfg.auxCoefficient * c * s, dWDec: aux.dWDec, dPre: aux.dF! };
}

/** Σ_rows ‖e − ē‖² for the residual e = x − x̂ (ē its batch mean), in float64: the AuxK normaliser. */
export function residualSumSquares(x: Tensor, xHat: Tensor): number {
  const [rows, d] = [x.shape[0]!, x.shape[1]!];
  const sum = new Float64Array(d);
  let sumSq = 0;
  for (let r = 0, o = 0; r < rows; r++)
    for (let j = 0; j < d; j++, o++) {
      const e = x.data[o]! - xHat.data[o]!;
      sum[j] += e;
      sumSq += e * e;
    }
  let meanPart = 0;
  for (let j = 0; j < d; j++) meanPart += (sum[j]! * sum[j]!) / rows;
  return Math.max(0, sumSq - meanPart);
}
