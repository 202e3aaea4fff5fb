/**
 * TopK SAE with the AuxK loss — Gao et al. 2024, "Scaling and evaluating sparse autoencoders".
 * All of this architecture's math is in this file; affine maps and their backward passes come from core.
 *
 *   pre = (x − b_dec)·W_enc + b_enc,   f = ReLU(TopK_k(pre)),   x̂ = f·W_dec + b_dec        (eq. 3)
 *   L   = ‖x − x̂‖² + α · AuxK
 * AuxK (section 2.4 / appendix A.2): a latent is dead if it has not fired in the last N_dead tokens; the top-k_aux
 * ReLU'd pre-activations among the dead latents reconstruct the residual e = x − x̂ (detached), and the loss is
 * normalised by the residual's batch variance, as openai/sparse_autoencoder and dictionary_learning do (SAELens's
 * unnormalised form is an option). α = 1/32, k_aux = d_in / 2. AuxK and the
 * dead-latent counters are core's (`core/src/sae/auxk.ts`), shared with every top-k style architecture.
 * Sparsity is exactly k per row; decoder rows are kept at unit norm by the trainer.
 */
import { z } from 'zod';
import {
  type AuxKConfig,
  type DeadLatentState,
  type DictionaryParams,
  type LossAndGrads,
  type Params,
  type SaelensFields,
  type SaeContext,
  type SparseRows,
  type Tensor,
  accumulate,
  auxKConfigFields,
  auxKFieldsFromSaelens,
  auxKPossible,
  auxKSaelensFields,
  baseSaeConfigSchema,
  deadLatentState,
  deadLatentsAuxK,
  decodeAffine,
  decoderBackward,
  defineSae,
  encoderBackward,
  encoderInput,
  encoderTopK,
  freshContext,
  initTiedDictionary,
  kRunConfig,
  kSparsity,
  lossAndGradsResult,
  reconstructionLoss,
  saelensActivationFn,
  saelensArchitectureIs,
} from '@saelab/core';

/** TopK's fields (BatchTopK extends them): k and the AuxK settings. */
export const topKFields = baseSaeConfigSchema.extend({
  /** Active latents per row (exact L0). */
  k: z.number().int().positive(),
  ...auxKConfigFields,
});
/** k latents must exist: the check both TopK and BatchTopK configs apply after their fields. */
export const kWithinDictionary = <C extends { k: number; dSae: number }>(c: C) => c.k <= c.dSae;
export const kWithinDictionaryIssue = { message: 'k must be at most d_sae', path: ['k'] };
export const topKConfigSchema = topKFields.refine(kWithinDictionary, kWithinDictionaryIssue);
export type TopKConfig = z.infer<typeof topKConfigSchema>;

/** Training state: tokens since each latent last fired (for dead-latent detection). */
export type TopKState = DeadLatentState;

/** cfg.json fields of TopK's settings, and back (shared with BatchTopK). */
export const topKSaelensFields: SaelensFields<TopKConfig> = {
  write: (cfg) => ({ k: cfg.k, ...auxKSaelensFields(cfg) }),
  // Older SAELens TopK folders keep k under activation_fn_kwargs.
  read: (json) => ({ k: json.k ?? (json.activation_fn_kwargs as { k?: unknown } | undefined)?.k, ...auxKFieldsFromSaelens(json) }),
};

export const topK = defineSae<TopKConfig, TopKState, DictionaryParams>({
  name: 'topk',
  source: import.meta.url,
  saelensArchitecture: 'topk',
  sparsity: kSparsity,
  runConfig: kRunConfig,
  runOptions: ['deadTokens'],
  decoderConstraint: 'unit-norm',
  configSchema: topKConfigSchema,
  // Paper: Adam (0.9, 0.999), no L1 (so no λ warm-up), unit-norm decoder with gradient projection.
  // The lr follows the paper's scaling with the dictionary size (Figure 3), lr = 2e-4 / √(m / 2¹⁴), as
  // dictionary_learning's TopKTrainer picks it when no lr is given (≈ 1.1e-3 at m = 512); gradient norm clipped at
  // 1 (dictionary_learning).
  recipe: {
    optimizer: { kind: 'adam', lr: ({ dSae }) => 2e-4 / Math.sqrt(dSae / 2 ** 14), beta1: 0.9, beta2: 0.999 },
    lrSchedule: 'constant',
    lrWarmupFraction: 0.01,
    sparsityWarmupFraction: 0,
    gradClip: 1,
    defaultSparsity: 32,
  },
  // AuxK is this recipe's dead-latent remedy; resampling is available (off by default) for ablations.
  latentResets: () => ({ b_enc: 0 }),

  paramShapes: ({ dIn, dSae }) => ({ W_enc: [dIn, dSae], W_dec: [dSae, dIn], b_enc: [dSae], b_dec: [dIn] }),

  init: (cfg, rng) => initTiedDictionary(cfg.dIn, cfg.dSae, rng),

  async encode(p, x, cfg, ctx) {
    const c = freshContext(ctx);
    const { f } = await encoderTopK(c, encoderInput(x, p.b_dec, cfg.applyBDecToInput, c), p.W_enc, p.b_enc, cfg.k, false);
    return f.toDense();
  },

  // The dead-latent counters are part of an exact resume: without them AuxK would be off for N_dead tokens.
  trainState: deadLatentState,

  async lossAndGrads(p, x, cfg, _lambda, state, ctx) {
    // AuxK needs the dense pre-activations only if some latent can be dead after this batch.
    const auxPossible = auxKPossible(state, cfg, x.shape[0]!);
    const input = encoderInput(x, p.b_dec, cfg.applyBDecToInput, ctx);
    // f = ReLU(TopK(pre)): k entries per row (fewer if some of the top k are ≤ 0).
    const { f, pre } = await encoderTopK(ctx, input, p.W_enc, p.b_enc, cfg.k, auxPossible);
    return lossAndGradsResult(await lossFromSelectedLatents(ctx, p, x, input, f, pre, state, cfg), f);
  },

  saelensFields: topKSaelensFields,
  // SAELens 6 writes architecture 'topk'; before 6.0 a TopK SAE was 'standard' with activation_fn_str 'topk'.
  readsSaelens: (json) => saelensArchitectureIs(json, 'topk') || (saelensArchitectureIs(json, 'standard') && saelensActivationFn(json) === 'topk'),
  // rescale_acts_by_decoder_norm: SAELens ranks pi ⊙ ‖W_dec,i‖ and decodes f / ‖W_dec,i‖ — folded into W_enc,
  // b_enc and W_dec exactly as SAELens's own `_fold_norm_topk` does.
  foldSaelens(params, cfg, json) {
    if (json.rescale_acts_by_decoder_norm !== true) return;
    const { dIn, dSae } = cfg;
    const Wd = params.W_dec.data;
    const We = params.W_enc.data;
    const be = params.b_enc.data;
    for (let i = 0; i < dSae; i++) {
      let ss = 0;
      for (let j = 0; j < dIn; j++) ss += Wd[i * dIn + j]! ** 2;
      const n = Math.max(Math.sqrt(ss), 1e-8); // SAELens clamps at 1e-8 too
      be[i] = be[i]! * n;
      for (let j = 0; j < dIn; j++) {
        Wd[i * dIn + j] = Wd[i * dIn + j]! / n;
        We[j * dSae + i] = We[j * dSae + i]! * n;
      }
    }
  },
});

/**
 * Everything after the selection, shared by TopK and BatchTopK: decode, reconstruction loss, AuxK on the dead latents,
 * and the backward pass. ∂f/∂pre is 1 at the kept entries and 0 elsewhere (the selection itself has no gradient),
 * so ∂L/∂pre is ∂L/∂f on f's pattern. `pre` is needed whenever a latent can be dead (see `auxKPossible`).
 */
export async function lossFromSelectedLatents(
  ctx: SaeContext,
  p: Params<DictionaryParams>,
  x: Tensor,
  input: Tensor,
  f: SparseRows,
  pre: Tensor | null,
  state: DeadLatentState,
  cfg: AuxKConfig & { applyBDecToInput: boolean },
): Promise<Omit<LossAndGrads<DictionaryParams>, 'latents'>> {
  const xHat = await decodeAffine(ctx, f, p.W_dec, p.b_dec);
  const { loss: mse, dXHat } = reconstructionLoss(x, xHat, ctx);
  const dec = await decoderBackward(ctx, f, dXHat, p.W_dec);
  const dPre: SparseRows[] = [dec.dF!];
  const aux = await deadLatentsAuxK(ctx, p, x, xHat, pre, f, state, cfg);
  if (aux) {
    accumulate(dec.dWDec, aux.dWDec);
    dPre.push(aux.dPre);
  }
  const auxk = aux?.auxk ?? 0;
  const enc = await encoderBackward(ctx, input, dPre, p.W_enc, cfg.applyBDecToInput);
  return {
    loss: mse + auxk,
    parts: { mse, auxk },
    grads: { W_enc: enc.dWEnc, b_enc: enc.dBEnc, W_dec: dec.dWDec, b_dec: accumulate(dec.dBDec, enc.dBDecFromInput) },
    xHat,
  };
}
