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
  type DictionaryParams,
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
  rowsAbove,
  rowsBetween,
  sampledDots,
  workspaceOf,
  zeros,
} from '@saelab/core';

export const jumpReluConfigSchema = baseSaeConfigSchema.extend({
  /** STE kernel bandwidth ε; 0.001 suits inputs normalised to E‖x‖² = 1. */
  bandwidth: z.number().positive().default(0.001),
  /** Initial threshold θ for every latent. */
  initialThreshold: z.number().positive().default(0.001),
});
export type JumpReluConfig = z.infer<typeof jumpReluConfigSchema>;
type JumpReluParams = DictionaryParams | 'threshold';

export const jumpRelu = defineSae<JumpReluConfig, undefined, JumpReluParams>({
  name: 'jumprelu',
  source: import.meta.url,
  saelensArchitecture: 'jumprelu',
  sparsity: penaltySparsity,
  decoderConstraint: 'unit-norm',
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

  encode: (p, x, cfg, ctx) => encodeAboveThreshold(p, x, cfg, ctx, p.threshold.data),

  // θ is a threshold on a JumpReLU, so θ ≥ 0; Adam on raw θ can step below 0, which would let negative
  // pre-activations through. Clamp, as SAELens's relu(threshold) does at inference.
  afterOptimizerStep(p) {
    const theta = p.threshold.data;
    for (let i = 0; i < theta.length; i++) if (theta[i]! < 0) theta[i] = 0;
  },

  setFiringCut(p, cut) {
    p.threshold.data.set(cut);
  },

  async lossAndGrads(p, x, cfg, lambda, _state, ctx) {
    const ws = workspaceOf(ctx);
    const rows = x.shape[0]!;
    const m = cfg.dSae;
    const eps = cfg.bandwidth;
    const theta = p.threshold.data;

    const input = encoderInput(x, p.b_dec, cfg.applyBDecToInput, ctx);
    const pre = await encoderPre(ctx, input, p.W_enc, p.b_enc);
    // f = pre ⊙ H(pre − θ) (active entries only) and the STE window: the entries where K((pre − θ)/ε) ≠ 0, i.e.
    // θ − ε/2 < pre < θ + ε/2 — the only ones that reach dθ (eqs. 11–12). Two SIMD scans over pre (core).
    const lo = theta.map((t) => t - eps / 2);
    const hi = theta.map((t) => t + eps / 2);
    const f = rowsAbove(pre, theta, ws.sparseRows('f', rows, m));
    const window = rowsBetween(pre, lo, hi, ws.sparseRows('window', rows, m)); // only its pattern is used
    const xHat = await decodeAffine(ctx, f, p.W_dec, p.b_dec);

    const { loss: mse, dXHat } = reconstructionLoss(x, xHat, ctx);
    const dec = await decoderBackward(ctx, f, dXHat, p.W_dec);
    // Through the JumpReLU: ∂f/∂pre = H(pre − θ), so ∂L/∂pre is ∂L/∂f on f's pattern.
    const dPre = dec.dF!;
    // dθ gathers both STE terms (eqs. 11–12), summed over rows; ∂L/∂f is needed on the window too.
    const dFWindow = await sampledDots(ctx, dXHat, p.W_dec, window, 'dFWindow');
    const dTheta = new Float64Array(m);
    for (let e = 0; e < window.nnz; e++) {
      const i = window.indices[e]!;
      dTheta[i] += -(theta[i]! / eps) * dFWindow.values[e]! - lambda / rows / eps;
    }
    const l0 = f.nnz / rows;

    const enc = await encoderBackward(ctx, input, dPre, p.W_enc, cfg.applyBDecToInput);
    const dThreshold = zeros([m]);
    for (let i = 0; i < m; i++) dThreshold.data[i] = dTheta[i]!;
    const grads = {
      W_enc: enc.dWEnc,
      b_enc: enc.dBEnc,
      W_dec: dec.dWDec,
      b_dec: accumulate(dec.dBDec, enc.dBDecFromInput),
      threshold: dThreshold,
    };
    const sparsity = lambda * l0;
    return lossAndGradsResult({ loss: mse + sparsity, parts: { mse, sparsity }, grads, xHat }, f);
  },

  saelensFields: {
    write: (cfg) => ({ jumprelu_bandwidth: cfg.bandwidth, jumprelu_init_threshold: cfg.initialThreshold }),
    read: (json) => ({ bandwidth: json.jumprelu_bandwidth, initialThreshold: json.jumprelu_init_threshold }),
  },
  // Older SAELens checkpoints store log θ.
  saelensTensorAliases: { threshold: { from: 'log_threshold', convert: Math.exp } },
  // SAELens gates with pre > relu(threshold) on ReLU(pre), i.e. our pre ⊙ H(pre − θ) with θ = max(θ, 0).
  foldSaelens(p) {
    const th = p.threshold.data;
    for (let i = 0; i < th.length; i++) if (th[i]! < 0) th[i] = 0;
  },
});
