/**
 * Matryoshka BatchTopK SAE — Bussmann, Nabeshima, Karvonen & Nanda 2025, "Learning Multi-Level Features with
 * Matryoshka Sparse Autoencoders" (arXiv 2503.17547); Nabeshima 2024, "Matryoshka Sparse Autoencoders". All of this
 * architecture's math is in this file; the affine maps, batch-level selection, AuxK and the inference threshold
 * come from @saelab/core.
 *
 * The dictionary is cut into G nested groups by a schedule of fractions (dictionary_learning's `group_fractions`,
 * default 1/32, 1/16, 1/8, 1/4, 1/2 + 1/32): level g uses the latents [0, w_g), w_G = m. One batch-level selection
 * over all m latents, then each level reconstructs from its prefix of the same latents:
 *
 *   pre = (x − b_dec)·W_enc + b_enc,    f = BatchTopK_{k·B}(ReLU(pre))                       (BatchTopK)
 *   x̂_g = b_dec + Σ_{i < w_g} f_i W_dec,i                                                  (nested prefixes)
 *   L   = Σ_g ω_g ‖x − x̂_g‖² + α · AuxK(e = x − x̂_G)        ω_g = 1/G by default, α = 1/32
 *
 * so the first latents must reconstruct alone and cannot absorb the features the later ones would specialise in.
 * Gradients: with D_h = Σ_{g ≥ h} ω_g ∂‖x − x̂_g‖²/∂x̂_g (a suffix sum over levels), a latent i of group h gets
 * ∂L/∂f_i = D_h·W_dec,iᵀ and W_dec,i gets Σ_rows f_i D_h; ∂L/∂b_dec = Σ_rows D_1 (+ the encoder-input path).
 * The selection has no gradient (∂f/∂pre = 1 on the kept entries), as in BatchTopK.
 *
 * As dictionary_learning's MatryoshkaBatchTopKTrainer and SAELens's MatryoshkaBatchTopKTrainingSAE do, inference
 * uses one global threshold θ (the running average of the smallest kept activation) and the SAE is saved and
 * served as a JumpReLU. Departures, each to match this project's BatchTopK so the two compare on equal terms:
 * - the loss is Σ_g ω_g·MSE_g (dictionary_learning's `total_l2_loss`; its trainer steps on that sum divided again
 *   by G, a constant factor that only rescales the gradient against AuxK);
 * - AuxK is core's (Gao et al. 2024, as SAELens: scaled by min(n_dead / k_aux, 1)), where dictionary_learning
 *   divides it by the residual's variance (OpenAI's normalisation);
 * - θ's rate is SAELens's 0.01 from the first step (dictionary_learning: 0.001 after step 1000);
 * - SAELens re-selects the top k·B inside each inner prefix; we keep one selection and take its prefixes, as
 *   dictionary_learning and the paper do.
 */
import { z } from 'zod';
import {
  type BatchTopKState,
  type DictionaryParams,
  type SparseRows,
  type Tensor,
  type Workspace,
  accumulate,
  auxKConfigFields,
  auxKFieldsFromSaelens,
  auxKSaelensFields,
  baseSaeConfigSchema,
  batchThresholdConfigFields,
  batchThresholdSaelensFields,
  batchTopKFamily,
  batchTopKSelect,
  deadLatentsAuxK,
  decodeAffine,
  decoderBackward,
  defineSae,
  encoderBackward,
  encoderInput,
  encoderPre,
  lossAndGradsResult,
  reconstructionLoss,
  updateBatchThreshold,
  workspaceOf,
} from '@saelab/core';

/** dictionary_learning's default group fractions (its demo configuration): 1/32, 1/16, 1/8, 1/4 and the rest. */
export const DEFAULT_GROUP_FRACTIONS = [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2 + 1 / 32];

/**
 * The level widths w_1 < … < w_G = d_sae: group g has ⌊f_g·m⌋ latents, the last group the rest (dictionary_learning).
 */
export function levelWidths(cfg: { dSae: number; groupFractions: readonly number[] }): number[] {
  const sizes = cfg.groupFractions.slice(0, -1).map((f) => Math.floor(f * cfg.dSae));
  sizes.push(cfg.dSae - sizes.reduce((a, b) => a + b, 0));
  let w = 0;
  return sizes.map((s) => (w += s));
}

export const matryoshkaConfigSchema = baseSaeConfigSchema
  .extend({
    /** Active latents per row on average over the batch (BatchTopK's k). */
    k: z.number().int().positive(),
    /** Share of the dictionary in each nested group, smallest level first; sums to 1. */
    groupFractions: z.array(z.number().positive()).min(1).default(() => [...DEFAULT_GROUP_FRACTIONS]),
    /** Weight ω_g of each level's reconstruction loss; default 1/G each. */
    groupWeights: z.array(z.number().nonnegative()).optional(),
    ...auxKConfigFields,
    ...batchThresholdConfigFields,
  })
  .superRefine((c, ctx) => {
    const bad = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    const sum = c.groupFractions.reduce((a, b) => a + b, 0);
    if (Math.abs(sum - 1) > 1e-6) bad('groupFractions', `group fractions must sum to 1, got ${sum}`);
    else if (levelWidths(c).some((w, g, all) => w <= (g === 0 ? 0 : all[g - 1]!))) bad('groupFractions', `a group would be empty at d_sae = ${c.dSae}`);
    if (c.groupWeights && c.groupWeights.length !== c.groupFractions.length) bad('groupWeights', `give one weight per group (${c.groupFractions.length})`);
    if (c.k > c.dSae) bad('k', 'k must be at most d_sae');
  });
export type MatryoshkaConfig = z.infer<typeof matryoshkaConfigSchema>;

const levelWeights = (cfg: MatryoshkaConfig) => cfg.groupWeights ?? cfg.groupFractions.map(() => 1 / cfg.groupFractions.length);

/** f's entries split by group: part g holds the latents in [w_{g−1}, w_g), over all m columns so the shared ops apply. */
function groupParts(f: SparseRows, widths: number[], ws: Workspace): SparseRows[] {
  const parts = widths.map((_, g) => ws.sparseRows(`f.group${g}`, f.rows, f.cols));
  for (let r = 0; r < f.rows; r++) {
    const [start, end] = [f.rowPtr[r]!, f.rowPtr[r + 1]!];
    for (const part of parts) part.reserve(end - start);
    for (let e = start; e < end; e++) {
      const i = f.indices[e]!;
      let g = 0;
      while (i >= widths[g]!) g++;
      parts[g]!.push(i, f.values[e]!);
    }
    for (const part of parts) part.endRow();
  }
  return parts;
}

export const matryoshka = defineSae<MatryoshkaConfig, BatchTopKState, DictionaryParams | 'threshold'>({
  ...batchTopKFamily,
  name: 'matryoshka',
  source: import.meta.url,
  configSchema: matryoshkaConfigSchema,
  // dictionary_learning's MatryoshkaBatchTopKTrainer (the paper's code): Adam (0.9, 0.999), lr 2e-4 (its
  // 2e-4 / √(m / 2^14) at m = 2^14; sweeps set the lr per run), global gradient-norm clip 1, no decay by default
  // (decay_start None), unit-norm decoder with gradient projection. Warm-up: 1% of the steps, as every recipe here
  // (its 1000 steps are ~0.4% of a 500M-token run).
  recipe: { optimizer: { kind: 'adam', lr: 2e-4, beta1: 0.9, beta2: 0.999 }, lrSchedule: 'constant', lrWarmupFraction: 0.01, sparsityWarmupFraction: 0, gradClip: 1, defaultSparsity: 32 },

  async lossAndGrads(p, x, cfg, _lambda, state, ctx) {
    const ws = workspaceOf(ctx);
    const widths = levelWidths(cfg);
    const weights = levelWeights(cfg);
    const input = encoderInput(x, p.b_dec, cfg.applyBDecToInput, ctx);
    const pre = await encoderPre(ctx, input, p.W_enc, p.b_enc);
    const f = batchTopKSelect(ctx, pre, cfg.k);
    const groups = groupParts(f, widths, ws);

    // Nested reconstructions x̂_g = x̂_{g−1} + f_g·W_dec (x̂_0 = b_dec) and each level's weighted loss ω_g·MSE_g.
    const parts: Record<string, number> = {};
    const dLevel: Tensor[] = [];
    let xHat: Tensor | null = null;
    for (const [g, fg] of groups.entries()) {
      const level = await decodeAffine(ctx, fg, p.W_dec, xHat ? null : p.b_dec, `xHat.${g}`);
      if (xHat) for (let i = 0; i < level.data.length; i++) level.data[i] += xHat.data[i]!;
      const { loss, dXHat } = reconstructionLoss(x, level, ctx, `dXHat.${g}`);
      parts[`mse_w${widths[g]}`] = weights[g]! * loss;
      for (let i = 0; i < dXHat.data.length; i++) dXHat.data[i] *= weights[g]!;
      dLevel.push(dXHat);
      xHat = level;
    }
    // D_h = Σ_{g ≥ h} ω_g ∂MSE_g/∂x̂_g, in place from the last level down.
    for (let h = dLevel.length - 2; h >= 0; h--) accumulate(dLevel[h]!, dLevel[h + 1]!);

    // Group h's latents are in every level from h on: their decoder rows and ∂L/∂f see D_h.
    const dPre: SparseRows[] = [];
    let dWDec: Tensor | null = null;
    let dBDec: Tensor | null = null;
    for (const [h, fh] of groups.entries()) {
      const dec = await decoderBackward(ctx, fh, dLevel[h]!, p.W_dec, { key: `dec${h}` });
      dWDec = dWDec ? accumulate(dWDec, dec.dWDec) : dec.dWDec;
      dBDec ??= dec.dBDec; // Σ_rows D_1: every level's b_dec gradient
      dPre.push(dec.dF!);
    }
    const aux = await deadLatentsAuxK(ctx, p, x, xHat!, pre, f, state, cfg);
    if (aux) {
      accumulate(dWDec!, aux.dWDec);
      dPre.push(aux.dPre);
    }
    const auxk = aux?.auxk ?? 0;
    const enc = await encoderBackward(ctx, input, dPre, p.W_enc, cfg.applyBDecToInput);
    updateBatchThreshold(state, f, cfg.thresholdRate, p.threshold);
    const nested = Object.values(parts).reduce((a, b) => a + b, 0);
    return lossAndGradsResult(
      {
        loss: nested + auxk,
        parts: { ...parts, auxk },
        // θ is a buffer: a zero gradient, so the optimiser leaves it alone.
        grads: { W_enc: enc.dWEnc, b_enc: enc.dBEnc, W_dec: dWDec!, b_dec: accumulate(dBDec!, enc.dBDecFromInput), threshold: ws.zeros('dThreshold', [cfg.dSae]) },
        xHat: xHat!,
      },
      f,
    );
  },

  // A JumpReLU folder (as SAELens and dictionary_learning save Matryoshka BatchTopK), plus the training settings;
  // `matryoshka_widths` is SAELens's name for the level widths.
  saelensFields: {
    write: (cfg) => ({
      k: cfg.k,
      ...auxKSaelensFields(cfg),
      ...batchThresholdSaelensFields('matryoshka', cfg),
      matryoshka_widths: levelWidths(cfg),
      group_fractions: cfg.groupFractions,
      group_weights: cfg.groupWeights ?? null,
    }),
    read: (json) => ({
      k: json.k,
      ...auxKFieldsFromSaelens(json),
      thresholdRate: json.topk_threshold_lr,
      groupFractions: json.group_fractions,
      groupWeights: json.group_weights,
    }),
  },
});
