/**
 * JumpReLU SAE — Rajamanoharan et al. 2024b, "Jumping Ahead: Improving Reconstruction Fidelity with JumpReLU
 * Sparse Autoencoders". All of this architecture's math is in this file; the affine maps, reconstruction loss and
 * their backward passes come from @saelab/core.
 *
 *   pre = (x − b_dec)·W_enc + b_enc
 *   f   = JumpReLU_θ(pre) = pre ⊙ H(pre − θ)                                  (paper eq. 4)
 *   L   = ‖x − x̂‖² + λ · ‖f‖₀ = ‖x − x̂‖² + λ Σ_i H(pre_i − θ_i)               (eq. 9)
 *
 * H has zero gradient almost everywhere, so θ is trained with straight-through pseudo-derivatives using the
 * rectangle kernel K(u) = 1[−½ < u < ½] and bandwidth ε (eqs. 11–12):
 *   ∂f_i/∂pre_i = H(pre_i − θ_i)          ∂f_i/∂θ_i = −(θ_i/ε) K((pre_i − θ_i)/ε)
 *   ∂H_i/∂pre_i = 0                       ∂H_i/∂θ_i = −(1/ε) K((pre_i − θ_i)/ε)
 * so the L0 term trains only θ. θ is stored directly (SAELens `threshold`), not as log θ.
 */
import { z } from 'zod';
import {
  type LossAndGrads,
  type Params,
  type SaeArchitecture,
  type SaeContext,
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
  zeros,
} from '@saelab/core';

export const jumpReluConfigSchema = baseSaeConfigSchema.extend({
  /** STE kernel bandwidth ε; 0.001 suits inputs normalised to E‖x‖² = 1. */
  bandwidth: z.number().positive().default(0.001),
  /** Initial threshold θ for every latent. */
  initialThreshold: z.number().positive().default(0.001),
});
export type JumpReluConfig = z.infer<typeof jumpReluConfigSchema>;

/** Rectangle kernel K(u) = 1 if −½ < u < ½ else 0. */
const rectangle = (u: number) => (u > -0.5 && u < 0.5 ? 1 : 0);

function applyJumpRelu(pre: Tensor, threshold: Tensor): Tensor {
  const m = threshold.data.length;
  const f = zeros(pre.shape);
  for (let i = 0; i < pre.data.length; i++) {
    const v = pre.data[i]!;
    if (v > threshold.data[i % m]!) f.data[i] = v;
  }
  return f;
}

export const jumpRelu: SaeArchitecture<JumpReluConfig> = {
  name: 'jumprelu',
  saelensArchitecture: 'jumprelu',
  sparsityKnob: 'lambda',
  decoderConstraint: () => 'unit-norm',
  configSchema: jumpReluConfigSchema,
  // Gemma Scope / paper settings: Adam β = (0, 0.999), lr 7e-5 with warm-up, λ warmed up from 0.
  recipe: {
    optimizer: { kind: 'adam', lr: 7e-5, beta1: 0, beta2: 0.999 },
    lrSchedule: 'constant',
    lrWarmupFraction: 0.01,
    sparsityWarmupFraction: 0.1,
    gradClip: 0,
    defaultSparsity: 1e-3,
  },

  paramShapes: ({ dIn, dSae }) => ({ W_enc: [dIn, dSae], W_dec: [dSae, dIn], b_enc: [dSae], b_dec: [dIn], threshold: [dSae] }),

  init(cfg, rng) {
    const p = initTiedDictionary(cfg.dIn, cfg.dSae, rng);
    return { ...p, threshold: { data: new Float32Array(cfg.dSae).fill(cfg.initialThreshold), shape: [cfg.dSae] } };
  },

  async encode(p, x, cfg, { engine }) {
    const pre = await affine(engine, encoderInput(x, p.b_dec!, cfg.applyBDecToInput), p.W_enc!, p.b_enc!);
    return applyJumpRelu(pre, p.threshold!);
  },

  decode: (p, f, _cfg, { engine }) => decodeAffine(engine, f, p.W_dec!, p.b_dec!),

  initTrainState: () => undefined,

  async lossAndGrads(p, x, cfg, lambda, _state, { engine }: SaeContext): Promise<LossAndGrads> {
    const rows = x.shape[0]!;
    const m = cfg.dSae;
    const eps = cfg.bandwidth;
    const theta = p.threshold!.data;

    const input = encoderInput(x, p.b_dec!, cfg.applyBDecToInput);
    const pre = await affine(engine, input, p.W_enc!, p.b_enc!);
    const f = applyJumpRelu(pre, p.threshold!);
    const xHat = await decodeAffine(engine, f, p.W_dec!, p.b_dec!);

    const { loss: mse, dXHat } = reconstructionLoss(x, xHat);
    const dec = await decoderBackward(engine, f, dXHat, p.W_dec!);
    const dF = dec.dF!;

    // Through the JumpReLU: dpre = dF ⊙ H(pre − θ); dθ gathers both STE terms (eqs. 11–12), summed over rows.
    const dPre = zeros(pre.shape);
    const dTheta = new Float64Array(m);
    let active = 0;
    for (let r = 0; r < rows; r++) {
      const o = r * m;
      for (let i = 0; i < m; i++) {
        const v = pre.data[o + i]!;
        const t = theta[i]!;
        if (v > t) {
          dPre.data[o + i] = dF.data[o + i]!;
          active++;
        }
        const k = rectangle((v - t) / eps);
        if (k !== 0) dTheta[i] += -(t / eps) * dF.data[o + i]! - (lambda / rows) / eps;
      }
    }
    const l0 = active / rows;

    const enc = await encoderBackward(engine, input, dPre, p.W_enc!, cfg.applyBDecToInput);
    const dThreshold = zeros([m]);
    for (let i = 0; i < m; i++) dThreshold.data[i] = dTheta[i]!;
    const grads: Params = {
      W_enc: enc.dWEnc,
      b_enc: enc.dBEnc,
      W_dec: dec.dWDec,
      b_dec: accumulate(dec.dBDec, enc.dBDecFromInput),
      threshold: dThreshold,
    };
    const sparsity = lambda * l0;
    return { loss: mse + sparsity, parts: { mse, sparsity }, grads, latents: f, xHat };
  },

  toSaelensConfig: (cfg) => ({ jumprelu_bandwidth: cfg.bandwidth, jumprelu_init_threshold: cfg.initialThreshold }),
  fromSaelensConfig: (json) =>
    jumpReluConfigSchema.parse({
      dIn: json.d_in,
      dSae: json.d_sae,
      applyBDecToInput: json.apply_b_dec_to_input ?? true,
      bandwidth: json.jumprelu_bandwidth ?? undefined,
      initialThreshold: json.jumprelu_init_threshold ?? undefined,
    }),
};
