/**
 * BatchTopK SAE — Bussmann, Leask & Nanda 2024, "BatchTopK Sparse Autoencoders". TopK relaxed from "k per row"
 * to "k·B over the batch": rows that need more latents take them from rows that need fewer. Training:
 *
 *   pre = (x − b_dec)·W_enc + b_enc,   f = BatchTopK_{k·B}(ReLU(pre)),   x̂ = f·W_dec + b_dec
 *   L   = ‖x − x̂‖² + α · AuxK                                             (AuxK exactly as TopK's, topk.ts)
 *
 * A batch-level selection cannot run on one row at inference, so (section 3) inference uses one global threshold θ,
 * the running average of the smallest activation kept in each training batch: f = pre ⊙ H(pre − θ), a JumpReLU
 * with the same θ for every latent. θ is a buffer, not a parameter (zero gradient): updated every step as
 * θ ← (1 − r)·θ + r·min_kept with rate r (SAELens `topk_threshold_lr`, 0.01; the first batch sets it) — core's
 * `sae/batch-threshold.ts`, shared with Matryoshka BatchTopK. Saved folders are JumpReLU folders (`threshold` = θ
 * everywhere), as SAELens saves BatchTopK for inference, and the architecture declares it is served as 'jumprelu',
 * so its folders load as JumpReLU. Mean L0 during training is exactly k; at inference it is ≈ k.
 */
import { z } from 'zod';
import {
  type BatchTopKState as FamilyState,
  type DictionaryParams,
  batchThresholdConfigFields,
  batchThresholdSaelensFields,
  batchTopKFamily,
  batchTopKSelect,
  defineSae,
  encoderInput,
  encoderPre,
  lossAndGradsResult,
  updateBatchThreshold,
  workspaceOf,
} from '@saelab/core';
import { kWithinDictionary, kWithinDictionaryIssue, lossFromSelectedLatents, topK, topKFields, topKSaelensFields } from './topk.js';

export const batchTopKConfigSchema = topKFields.extend(batchThresholdConfigFields).refine(kWithinDictionary, kWithinDictionaryIssue);
export type BatchTopKConfig = z.infer<typeof batchTopKConfigSchema>;

/** TopK's dead-latent counters plus the inference threshold's running average. */
export type BatchTopKState = FamilyState;

export const batchTopK = defineSae<BatchTopKConfig, BatchTopKState, DictionaryParams | 'threshold'>({
  ...batchTopKFamily,
  name: 'batchtopk',
  source: import.meta.url,
  configSchema: batchTopKConfigSchema,
  // The paper trains with TopK's recipe (Adam, unit-norm decoder, AuxK α = 1/32).
  recipe: topK.recipe,

  async lossAndGrads(p, x, cfg, _lambda, state, ctx) {
    const ws = workspaceOf(ctx);
    const input = encoderInput(x, p.b_dec, cfg.applyBDecToInput, ctx);
    const pre = await encoderPre(ctx, input, p.W_enc, p.b_enc);
    // f: the k·B largest positive pre-activations of the whole batch (all positive ones if fewer).
    const f = batchTopKSelect(ctx, pre, cfg.k);
    const out = await lossFromSelectedLatents(ctx, p, x, input, f, pre, state, cfg);
    updateBatchThreshold(state, f, cfg.thresholdRate, p.threshold);
    // θ is a buffer: a zero gradient, so the optimiser leaves it alone.
    return lossAndGradsResult({ ...out, grads: { ...out.grads, threshold: ws.zeros('dThreshold', [cfg.dSae]) } }, f);
  },

  // A JumpReLU folder for SAELens, plus the BatchTopK settings it was trained with (SAELens ignores extra fields).
  saelensFields: {
    write: (cfg) => ({ ...topKSaelensFields.write(cfg), ...batchThresholdSaelensFields('batchtopk', cfg) }),
    read: (json) => ({ ...topKSaelensFields.read(json), thresholdRate: json.topk_threshold_lr }),
  },
});
