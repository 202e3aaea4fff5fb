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
 * θ ← (1 − r)·θ + r·min_kept with rate r (SAELens `topk_threshold_lr`, 0.01; the first batch sets it).
 * Saved folders are JumpReLU folders (`threshold` = θ everywhere), as SAELens saves BatchTopK for inference, so
 * any JumpReLU loader runs them. Mean L0 during training is exactly k; at inference it is ≈ k.
 */
import { z } from 'zod';
import {
  type LossAndGrads,
  type SaeArchitecture,
  type SparseRows,
  decodeAffine,
  encoderInput,
  encoderPre,
  freshContext,
  globalTopK,
  initTiedDictionary,
  lossAndGradsResult,
  rowsAbove,
  workspaceOf,
  zeros,
} from '@saelab/core';
import { type TopKState, kWithinDictionary, kWithinDictionaryIssue, lossFromSelectedLatents, topK, topKFields, topKFieldsFromSaelens, topKSaelensFields } from './topk.js';

export const batchTopKConfigSchema = topKFields
  .extend({
    /** Rate of the running average that gives the inference threshold θ (SAELens `topk_threshold_lr`). */
    thresholdRate: z.number().gt(0).max(1).default(0.01),
  })
  .refine(kWithinDictionary, kWithinDictionaryIssue);
export type BatchTopKConfig = z.infer<typeof batchTopKConfigSchema>;

/** TopK's dead-latent counters plus the inference threshold's running average. */
export interface BatchTopKState extends TopKState {
  /** θ so far (mirrored into the `threshold` tensor after every step). */
  threshold: number;
  /** Batches averaged into θ (0: the next batch sets θ outright). */
  thresholdUpdates: number;
}

export const batchTopK: SaeArchitecture<BatchTopKConfig, BatchTopKState> = {
  name: 'batchtopk',
  saelensArchitecture: 'jumprelu',
  sparsityKnob: 'k',
  decoderConstraint: () => 'unit-norm',
  configSchema: batchTopKConfigSchema,
  // The paper trains with TopK's recipe (Adam, unit-norm decoder, AuxK α = 1/32).
  recipe: topK.recipe,

  paramShapes: ({ dIn, dSae }) => ({ W_enc: [dIn, dSae], W_dec: [dSae, dIn], b_enc: [dSae], b_dec: [dIn], threshold: [dSae] }),

  init: (cfg, rng) => ({ ...initTiedDictionary(cfg.dIn, cfg.dSae, rng), threshold: zeros([cfg.dSae]) }),

  // Inference: the JumpReLU with the global threshold (θ < 0 would let negative pre-activations through: clamp).
  async encode(p, x, cfg, ctx) {
    const c = freshContext(ctx);
    const pre = await encoderPre(c, encoderInput(x, p.b_dec!, cfg.applyBDecToInput, c), p.W_enc!, p.b_enc!);
    return rowsAbove(pre, p.threshold!.data.map((t) => Math.max(t, 0))).toDense();
  },

  decode: (p, f, _cfg, { engine }) => decodeAffine(engine, f, p.W_dec!, p.b_dec!),

  initTrainState: (cfg) => ({ ...topK.initTrainState(cfg), threshold: 0, thresholdUpdates: 0 }),
  exportTrainState: (state) => ({ ...topK.exportTrainState!(state), threshold: state.threshold, thresholdUpdates: state.thresholdUpdates }),
  importTrainState: (cfg, json) => ({
    ...topK.importTrainState!(cfg, json),
    threshold: z.number().finite().parse(json.threshold),
    thresholdUpdates: z.number().int().nonnegative().parse(json.thresholdUpdates),
  }),

  async lossAndGrads(p, x, cfg, _lambda, state, ctx): Promise<LossAndGrads> {
    const ws = workspaceOf(ctx);
    const [rows, m] = [x.shape[0]!, cfg.dSae];
    const input = encoderInput(x, p.b_dec!, cfg.applyBDecToInput, ctx);
    const pre = await encoderPre(ctx, input, p.W_enc!, p.b_enc!);
    // f: the k·B largest positive pre-activations of the whole batch (all positive ones if fewer).
    const f = globalTopK(pre, cfg.k * rows, { out: ws.sparseRows('f', rows, m), scratch: ws.buffer('batchTopKScratch', pre.data.length) });
    const out = await lossFromSelectedLatents(ctx, p, x, input, f, pre, state, cfg);
    updateThreshold(state, f, cfg.thresholdRate);
    p.threshold!.data.fill(state.threshold);
    // θ is a buffer: a zero gradient, so the optimiser leaves it alone.
    return lossAndGradsResult({ ...out, grads: { ...out.grads, threshold: ws.zeros('dThreshold', [m]) } }, f);
  },

  // A JumpReLU folder for SAELens, plus the BatchTopK settings it was trained with (SAELens ignores extra fields).
  toSaelensConfig: (cfg) => ({
    jumprelu_bandwidth: 0.001,
    jumprelu_init_threshold: 0.001,
    ...topKSaelensFields(cfg),
    saelab_training_architecture: 'batchtopk',
    topk_threshold_lr: cfg.thresholdRate,
  }),
  fromSaelensConfig: (json) => batchTopKConfigSchema.parse({ ...topKFieldsFromSaelens(json), thresholdRate: json.topk_threshold_lr ?? undefined }),
};

/** θ ← (1 − r)·θ + r·(smallest kept activation); the first batch sets θ. A batch with no active latent leaves θ. */
function updateThreshold(state: BatchTopKState, f: SparseRows, rate: number): void {
  if (f.nnz === 0) return;
  let minKept = Infinity;
  for (let e = 0; e < f.nnz; e++) minKept = Math.min(minKept, f.values[e]!);
  state.threshold = state.thresholdUpdates === 0 ? minKept : (1 - rate) * state.threshold + rate * minKept;
  state.thresholdUpdates++;
}
