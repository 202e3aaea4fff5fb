/**
 * ReLU SAE, Anthropic's "April update" recipe (Conerly et al. 2024, Transformer Circuits "Circuits Updates — April
 * 2024"). All of this architecture's math is in this file; affine maps and their backward passes come from core.
 *
 *   pre = (x − b_dec)·W_enc + b_enc,   f = ReLU(pre),   x̂ = f·W_dec + b_dec
 *   L   = ‖x − x̂‖² + λ Σ_i f_i ‖W_dec,i‖₂          (decoder-norm-weighted L1; no norm constraint)
 *
 * The older recipe (Bricken et al. 2023: plain L1 with unit-norm decoder rows) is kept as the ablation
 * `l1Penalty: 'plain'`. Dead latents are resampled as in the older recipe (Bricken et al. 2023; core sae/resample.ts);
 * the April update trains without it, but at our short budgets a third of the latents die without it.
 */
import { z } from 'zod';
import {
  type DictionaryParams,
  SHORT_RUN_RESAMPLING,
  accumulate,
  baseSaeConfigSchema,
  decodeAffine,
  decoderBackward,
  defineSae,
  encodeAboveThreshold,
  encoderBackward,
  encoderInput,
  encoderPre,
  initTiedDictionary,
  lossAndGradsResult,
  penaltySparsity,
  reconstructionLoss,
  rowNorms,
  rowsAbove,
  saelensActivationFn,
  saelensArchitectureIs,
  workspaceOf,
} from '@saelab/core';

export const reluConfigSchema = baseSaeConfigSchema.extend({
  /** 'decoder-norm-weighted' (April update, default) or 'plain' L1 with unit-norm decoder rows (older recipe). */
  l1Penalty: z.enum(['decoder-norm-weighted', 'plain']).default('decoder-norm-weighted'),
  /** Norm of the random W_dec rows at init (April update: 0.1). */
  decoderInitNorm: z.number().positive().default(0.1),
});
export type ReluConfig = z.infer<typeof reluConfigSchema>;

export const relu = defineSae<ReluConfig, undefined, DictionaryParams>({
  name: 'relu',
  source: import.meta.url,
  saelensArchitecture: 'standard',
  sparsity: penaltySparsity,
  decoderConstraint: (cfg) => (cfg.l1Penalty === 'plain' ? 'unit-norm' : 'none'),
  configSchema: reluConfigSchema,
  // April update: Adam (0.9, 0.999), λ warmed up over the first 5%, lr decayed to 0 over the last 20%, clip at 1.
  recipe: {
    optimizer: { kind: 'adam', lr: 5e-5, beta1: 0.9, beta2: 0.999 },
    lrSchedule: 'linear-decay',
    lrWarmupFraction: 0,
    sparsityWarmupFraction: 0.05,
    gradClip: 1,
    // The April update's λ = 5 is for inputs scaled to E‖x‖² = d_in; ours have E‖x‖² = 1, i.e. x / √d_in, and
    // the loss at scale s with λ has the minimiser of scale 1 with λ / s: λ = 5 / √d_in.
    defaultSparsity: ({ dIn }) => 5 / Math.sqrt(dIn),
    resample: SHORT_RUN_RESAMPLING,
  },
  latentResets: () => ({ b_enc: 0 }),

  paramShapes: ({ dIn, dSae }) => ({ W_enc: [dIn, dSae], W_dec: [dSae, dIn], b_enc: [dSae], b_dec: [dIn] }),

  init: (cfg, rng) => initTiedDictionary(cfg.dIn, cfg.dSae, rng, cfg.l1Penalty === 'plain' ? 1 : cfg.decoderInitNorm),

  encode: (p, x, cfg, ctx) => encodeAboveThreshold(p, x, cfg, ctx, 0),

  // Latent i fires where pre_i > 0, i.e. where (x − b_dec)·W_enc,i > −b_enc,i.
  setFiringCut(p, cut) {
    for (let i = 0; i < cut.length; i++) p.b_enc.data[i] = -cut[i]!;
  },

  async lossAndGrads(p, x, cfg, lambda, _state, ctx) {
    const ws = workspaceOf(ctx);
    const rows = x.shape[0]!;
    const { dIn, dSae: m } = cfg;
    const weighted = cfg.l1Penalty === 'decoder-norm-weighted';
    const norms = weighted ? rowNorms(p.W_dec) : new Float32Array(m).fill(1);

    const input = encoderInput(x, p.b_dec, cfg.applyBDecToInput, ctx);
    const pre = await encoderPre(ctx, input, p.W_enc, p.b_enc);
    const f = rowsAbove(pre, 0, ws.sparseRows('f', rows, m)); // ReLU: the active entries only
    const xHat = await decodeAffine(ctx, f, p.W_dec, p.b_dec);

    const { loss: mse, dXHat } = reconstructionLoss(x, xHat, ctx);
    const dec = await decoderBackward(ctx, f, dXHat, p.W_dec);

    // ∂/∂f of (λ/B) Σ f_i‖W_dec,i‖ is (λ/B)‖W_dec,i‖; the ReLU passes gradient exactly at f's active entries.
    const dF = dec.dF!;
    const dPre = f.withValues(ws.buffer('dPre', f.nnz));
    const fSum = new Float64Array(m);
    let penalty = 0;
    const { indices, values } = f;
    for (let e = 0, n = f.nnz; e < n; e++) {
      const i = indices[e]!;
      const v = values[e]!;
      dPre.values[e] = dF.values[e]! + (lambda / rows) * norms[i]!;
      fSum[i] += v;
      penalty += v * norms[i]!;
    }
    // ∂/∂W_dec,i of (λ/B) Σ_rows f_i ‖W_dec,i‖ = (λ/B) (Σ_rows f_i) W_dec,i / ‖W_dec,i‖.
    if (weighted) {
      for (let i = 0; i < m; i++) {
        if (fSum[i] === 0 || norms[i] === 0) continue;
        const c = ((lambda / rows) * fSum[i]!) / norms[i]!;
        for (let j = 0; j < dIn; j++) dec.dWDec.data[i * dIn + j] += c * p.W_dec.data[i * dIn + j]!;
      }
    }

    const enc = await encoderBackward(ctx, input, dPre, p.W_enc, cfg.applyBDecToInput);
    const sparsity = (lambda * penalty) / rows;
    return lossAndGradsResult(
      {
        loss: mse + sparsity,
        parts: { mse, sparsity },
        grads: { W_enc: enc.dWEnc, b_enc: enc.dBEnc, W_dec: dec.dWDec, b_dec: accumulate(dec.dBDec, enc.dBDecFromInput) },
        xHat,
      },
      f,
    );
  },

  saelensFields: {
    write: (cfg) => ({ l1_penalty: cfg.l1Penalty, decoder_init_norm: cfg.decoderInitNorm }),
    read: (json) => ({ l1Penalty: json.l1_penalty, decoderInitNorm: json.decoder_init_norm }),
  },
  // SAELens's 'standard' SAE with a ReLU (before 6.0 the same architecture name also meant TopK, by activation_fn_str).
  readsSaelens: (json) => saelensArchitectureIs(json, 'standard') && saelensActivationFn(json) === 'relu',
});
