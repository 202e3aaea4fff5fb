/**
 * TopK SAE with the AuxK loss — Gao et al. 2024, "Scaling and evaluating sparse autoencoders".
 * All of this architecture's math is in this file; affine maps and their backward passes come from core.
 *
 *   pre = (x − b_dec)·W_enc + b_enc,   f = ReLU(TopK_k(pre)),   x̂ = f·W_dec + b_dec        (eq. 3)
 *   L   = ‖x − x̂‖² + α · AuxK
 * AuxK (section 2.4 / appendix A.2): a latent is dead if it has not fired in the last N_dead tokens. With
 * e = x − x̂ (detached), take the top-k_aux pre-activations among dead latents only, decode them without b_dec to ê,
 * AuxK = ‖e − ê‖², scaled by min(n_dead / k_aux, 1) (as SAELens does). α = 1/32, k_aux = d_in / 2.
 * Sparsity is exactly k per row; decoder rows are kept at unit norm by the trainer.
 */
import { z } from 'zod';
import {
  type LossAndGrads,
  type SaeArchitecture,
  type Tensor,
  accumulate,
  affine,
  baseSaeConfigSchema,
  decodeAffine,
  decoderBackward,
  encoderBackward,
  encoderInput,
  initTiedDictionary,
  reconstructionLoss,
  topKIndices,
  zeros,
} from '@saelab/core';

export const topKConfigSchema = baseSaeConfigSchema
  .extend({
    /** Active latents per row (exact L0). */
    k: z.number().int().positive(),
    /** Latents used by the AuxK reconstruction; default d_in / 2. */
    kAux: z.number().int().positive().optional(),
    /** AuxK coefficient α. */
    auxCoefficient: z.number().nonnegative().default(1 / 32),
    /** A latent that has not fired for this many training tokens is dead (paper: 10M; scale with the data). */
    deadTokensThreshold: z.number().int().positive().default(10_000_000),
  })
  .refine((c) => c.k <= c.dSae, { message: 'k must be at most d_sae', path: ['k'] });
export type TopKConfig = z.infer<typeof topKConfigSchema>;

/** Training state: tokens since each latent last fired (for dead-latent detection). */
export interface TopKState {
  tokensSinceFired: Float64Array;
}

/** f = ReLU of the k largest entries of each row, zero elsewhere; also returns their indices. */
function topKRelu(pre: Tensor, k: number): { f: Tensor; indices: Int32Array } {
  const [rows, m] = pre.shape as [number, number];
  const indices = topKIndices(pre, k);
  const f = zeros(pre.shape);
  for (let r = 0; r < rows; r++)
    for (let s = 0; s < k; s++) {
      const j = r * m + indices[r * k + s]!;
      if (pre.data[j]! > 0) f.data[j] = pre.data[j]!;
    }
  return { f, indices };
}

export const topK: SaeArchitecture<TopKConfig, TopKState> = {
  name: 'topk',
  saelensArchitecture: 'topk',
  sparsityKnob: 'k',
  decoderConstraint: () => 'unit-norm',
  configSchema: topKConfigSchema,
  // Paper: Adam (0.9, 0.999), no L1 (so no λ warm-up), unit-norm decoder with gradient projection.
  recipe: {
    optimizer: { kind: 'adam', lr: 2e-4, beta1: 0.9, beta2: 0.999 },
    lrSchedule: 'constant',
    lrWarmupFraction: 0.01,
    sparsityWarmupFraction: 0,
    gradClip: 0,
    defaultSparsity: 32,
  },

  paramShapes: ({ dIn, dSae }) => ({ W_enc: [dIn, dSae], W_dec: [dSae, dIn], b_enc: [dSae], b_dec: [dIn] }),

  init: (cfg, rng) => initTiedDictionary(cfg.dIn, cfg.dSae, rng),

  async encode(p, x, cfg, { engine }) {
    const pre = await affine(engine, encoderInput(x, p.b_dec!, cfg.applyBDecToInput), p.W_enc!, p.b_enc!);
    return topKRelu(pre, cfg.k).f;
  },

  decode: (p, f, _cfg, { engine }) => decodeAffine(engine, f, p.W_dec!, p.b_dec!),

  initTrainState: (cfg) => ({ tokensSinceFired: new Float64Array(cfg.dSae) }),

  async lossAndGrads(p, x, cfg, _lambda, state, { engine }): Promise<LossAndGrads> {
    const rows = x.shape[0]!;
    const m = cfg.dSae;
    const input = encoderInput(x, p.b_dec!, cfg.applyBDecToInput);
    const pre = await affine(engine, input, p.W_enc!, p.b_enc!);
    const { f } = topKRelu(pre, cfg.k);
    const xHat = await decodeAffine(engine, f, p.W_dec!, p.b_dec!);
    const { loss: mse, dXHat } = reconstructionLoss(x, xHat);
    const dec = await decoderBackward(engine, f, dXHat, p.W_dec!);

    const dPre = zeros(pre.shape);
    for (let i = 0; i < f.data.length; i++) if (f.data[i]! > 0) dPre.data[i] = dec.dF!.data[i]!;

    // Dead-latent bookkeeping, then AuxK on the dead latents.
    const fired = new Uint8Array(m);
    for (let i = 0; i < f.data.length; i++) if (f.data[i]! > 0) fired[i % m] = 1;
    const since = state.tokensSinceFired;
    let nDead = 0;
    for (let j = 0; j < m; j++) {
      since[j] = fired[j] ? 0 : since[j]! + rows;
      if (since[j]! >= cfg.deadTokensThreshold) nDead++;
    }
    let auxk = 0;
    const kAux = cfg.kAux ?? Math.max(1, Math.floor(cfg.dIn / 2));
    if (nDead > 0 && cfg.auxCoefficient > 0) {
      const k = Math.min(kAux, nDead);
      const scale = Math.min(nDead / kAux, 1);
      const deadPre = zeros(pre.shape);
      for (let i = 0; i < pre.data.length; i++) deadPre.data[i] = since[i % m]! >= cfg.deadTokensThreshold ? pre.data[i]! : -Infinity;
      const { f: fAux } = topKRelu(deadPre, k);
      const eHat = await engine.gemm(fAux, p.W_dec!); // no b_dec: it predicts the residual e
      // AuxK = scale · mean_rows ‖e − ê‖² with e = x − x̂ detached; gradient w.r.t. ê is 2·scale·(ê − e)/B.
      const dEHat = zeros(eHat.shape);
      let s = 0;
      for (let i = 0; i < eHat.data.length; i++) {
        const diff = eHat.data[i]! - (x.data[i]! - xHat.data[i]!);
        s += diff * diff;
        dEHat.data[i] = (cfg.auxCoefficient * scale * 2 * diff) / rows;
      }
      auxk = (cfg.auxCoefficient * scale * s) / rows;
      const aux = await decoderBackward(engine, fAux, dEHat, p.W_dec!);
      accumulate(dec.dWDec, aux.dWDec);
      for (let i = 0; i < fAux.data.length; i++) if (fAux.data[i]! > 0) dPre.data[i] += aux.dF!.data[i]!;
    }

    const enc = await encoderBackward(engine, input, dPre, p.W_enc!, cfg.applyBDecToInput);
    return {
      loss: mse + auxk,
      parts: { mse, auxk },
      grads: { W_enc: enc.dWEnc, b_enc: enc.dBEnc, W_dec: dec.dWDec, b_dec: accumulate(dec.dBDec, enc.dBDecFromInput) },
      latents: f,
      xHat,
    };
  },

  toSaelensConfig: (cfg) => ({
    k: cfg.k,
    k_aux: cfg.kAux ?? null,
    aux_coefficient: cfg.auxCoefficient,
    dead_tokens_threshold: cfg.deadTokensThreshold,
  }),
  fromSaelensConfig: (json) =>
    topKConfigSchema.parse({
      dIn: json.d_in,
      dSae: json.d_sae,
      applyBDecToInput: json.apply_b_dec_to_input ?? true,
      k: json.k,
      kAux: json.k_aux ?? undefined,
      auxCoefficient: json.aux_coefficient ?? undefined,
      deadTokensThreshold: json.dead_tokens_threshold ?? undefined,
    }),
};
