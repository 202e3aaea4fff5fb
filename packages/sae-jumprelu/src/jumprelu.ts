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
 *
 * θ's step can be bounded (`thresholdStepBound` b; off by default, the sweep presets use 2): after each optimiser
 * step θ is clipped to within b·ε of its value before the step. Adam normalises each coordinate's step to ≈ lr when its gradient is steady, but θ's STE
 * gradient is sparse (only rows inside the window reach it), and after a run of zero gradients Adam's second-moment
 * estimate has decayed, so one non-zero gradient can move θ by up to ≈ lr/√(1 − β2) ≈ 30·lr: far past a latent's
 * whole pre-activation range, after which none of its pre-activations falls in the window and the latent gets no
 * gradient at all. With the bound a step can skip at most a b·ε slice of the range. The strict bound b = ½ (θ never
 * crosses a pre-activation outside its window) moves θ too slowly from its init for short runs: on the synthetic
 * ground-truth test it reaches MMCS 0.87 where b = 2 reaches 0.97 and no bound 0.996 (same lr, clip and steps).
 * References treat the problem differently: SAELens and the paper's reference code train ln θ (`log_threshold`,
 * so a step changes θ by a fraction ≈ lr of itself); dictionary_learning trains raw θ at lr 7e-5. We keep raw θ
 * (ln θ at the lrs short runs need also moves θ from its 0.001 init too slowly) and offer the bound. It is off by
 * default because it slows θ wherever θ must move fast (one-pass L0 targeting at lr 1e-2 misses its target by 40%
 * with b = 2), and on the default data it removed few dead latents (35.9% → 30.7% at b = 8); the pre-activation
 * loss below is what removes them.
 *
 * Dead latents (no firing for N_dead training tokens: a tenth of the run, at most 10M, as AuxK's window) get the
 * optional pre-activation loss of Anthropic's "Circuits Updates — January 2025" (SAELens
 * `pre_act_loss_coefficient`): c · mean_rows Σ_{i dead} ReLU(θ_i − pre_i), which pulls a dead latent's
 * pre-activations up to its threshold (and its θ down) until it fires again. SAELens and Anthropic weight each
 * term by ‖W_dec,i‖; our decoder rows have unit norm, so the weight is 1. Off by default (c = 0, as in SAELens).
 */
import { z } from 'zod';
import {
  type DeadLatentState,
  type DictionaryParams,
  type SparseRows,
  type Tensor,
  type TrainStateCodec,
  type Workspace,
  deadLatentState,
  deadTokensFor,
  updateDeadLatents,
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
  /** Largest change of θ per optimiser step, in bandwidths ε (see the header); 0 = off. */
  thresholdStepBound: z.number().nonnegative().default(0),
  /** Coefficient c of the pre-activation loss on dead latents (see the header); 0 = off. */
  preActCoefficient: z.number().nonnegative().default(0),
  /** A latent that has not fired for this many training tokens is dead (for the pre-activation loss). */
  deadTokensThreshold: z.number().int().positive().default(10_000_000),
});
export type JumpReluConfig = z.infer<typeof jumpReluConfigSchema>;
type JumpReluParams = DictionaryParams | 'threshold';

/** Dead-latent counters (core's) and θ as it was before the optimiser step (for the step bound after it). */
export interface JumpReluState extends DeadLatentState {
  thresholdBefore: Float32Array;
}
// `| undefined`: lossAndGrads also runs outside a trainer (tests, benchmarks) with no state.
const jumpReluState: TrainStateCodec<JumpReluConfig, JumpReluState | undefined> = {
  init: (cfg) => ({ ...deadLatentState.init(cfg), thresholdBefore: new Float32Array(cfg.dSae).fill(cfg.initialThreshold) }),
  export: (s) => ({ ...deadLatentState.export(s!), thresholdBefore: Array.from(s!.thresholdBefore) }),
  import: (cfg, json) => ({ ...deadLatentState.import(cfg, json), thresholdBefore: Float32Array.from(z.array(z.number()).length(cfg.dSae).parse(json.thresholdBefore)) }),
};

export const jumpRelu = defineSae<JumpReluConfig, JumpReluState | undefined, JumpReluParams>({
  name: 'jumprelu',
  source: import.meta.url,
  saelensArchitecture: 'jumprelu',
  sparsity: penaltySparsity,
  // N_dead scales with the run, as AuxK's does (a tenth of the run's tokens, at most 10M).
  runConfig: (run) => ({ deadTokensThreshold: deadTokensFor(run) }),
  runOptions: ['deadTokens'],
  decoderConstraint: 'unit-norm',
  configSchema: jumpReluConfigSchema,
  // Gemma Scope / paper settings: Adam β = (0, 0.999), lr 7e-5 with warm-up, λ warmed up from 0; gradient norm
  // clipped at 1, as dictionary_learning's JumpReluTrainer does (trainers/jumprelu.py).
  recipe: {
    optimizer: { kind: 'adam', lr: 7e-5, beta1: 0, beta2: 0.999 },
    lrSchedule: 'constant',
    lrWarmupFraction: 0.01,
    sparsityWarmupFraction: 0.1,
    gradClip: 1,
    defaultSparsity: 1e-3,
  },

  paramShapes: ({ dIn, dSae }) => ({ W_enc: [dIn, dSae], W_dec: [dSae, dIn], b_enc: [dSae], b_dec: [dIn], threshold: [dSae] }),

  init(cfg, rng) {
    const p = initTiedDictionary(cfg.dIn, cfg.dSae, rng);
    return { ...p, threshold: { data: new Float32Array(cfg.dSae).fill(cfg.initialThreshold), shape: [cfg.dSae] } };
  },

  encode: (p, x, cfg, ctx) => encodeAboveThreshold(p, x, cfg, ctx, p.threshold.data),
  // Resampling is not the paper's recipe (it is off by default); a resampled latent restarts at the initial θ.
  latentResets: (cfg) => ({ b_enc: 0, threshold: cfg.initialThreshold }),

  // The STE bandwidth sets how many pre-activations reach dθ per batch (the paper treats it as a hyperparameter):
  // one factor of 2 down and up from the default, for the sweep's `tune: full`.
  tuningKnobs: { bandwidth: [0.0005, 0.001, 0.002] },

  trainState: jumpReluState,

  // The step bound (see the header): θ ∈ [θ_before − b·ε, θ_before + b·ε]. Then θ ≥ 0: Adam on raw θ can step below
  // 0, which would let negative pre-activations through; clamp, as SAELens's relu(threshold) does at inference.
  afterOptimizerStep(p, cfg, state) {
    const theta = p.threshold.data;
    const bound = cfg.thresholdStepBound * cfg.bandwidth;
    if (state && bound > 0) {
      const before = state.thresholdBefore;
      for (let i = 0; i < theta.length; i++) theta[i] = Math.min(before[i]! + bound, Math.max(before[i]! - bound, theta[i]!));
    }
    for (let i = 0; i < theta.length; i++) if (theta[i]! < 0) theta[i] = 0;
  },

  setFiringCut(p, cut) {
    p.threshold.data.set(cut);
  },

  async lossAndGrads(p, x, cfg, lambda, state, ctx) {
    const ws = workspaceOf(ctx);
    const rows = x.shape[0]!;
    const m = cfg.dSae;
    const eps = cfg.bandwidth;
    const theta = p.threshold.data;
    state?.thresholdBefore.set(theta); // state is undefined only when called outside a trainer (tests)

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

    const dead = state ? updateDeadLatents(state, f, cfg) : [];
    const preAct = cfg.preActCoefficient > 0 && dead.length > 0 ? preActLoss(ws, pre, theta, dead, cfg.preActCoefficient, dTheta) : null;
    const enc = await encoderBackward(ctx, input, preAct ? [dPre, preAct.dPre] : dPre, p.W_enc, cfg.applyBDecToInput);
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
    const parts = { mse, sparsity, ...(preAct ? { preAct: preAct.loss } : {}) };
    return lossAndGradsResult({ loss: mse + sparsity + (preAct?.loss ?? 0), parts, grads, xHat }, f);
  },

  saelensFields: {
    write: (cfg) => ({
      jumprelu_bandwidth: cfg.bandwidth,
      jumprelu_init_threshold: cfg.initialThreshold,
      threshold_step_bound: cfg.thresholdStepBound,
      pre_act_loss_coefficient: cfg.preActCoefficient,
      dead_tokens_threshold: cfg.deadTokensThreshold,
    }),
    read: (json) => ({
      bandwidth: json.jumprelu_bandwidth,
      initialThreshold: json.jumprelu_init_threshold,
      thresholdStepBound: json.threshold_step_bound,
      preActCoefficient: json.pre_act_loss_coefficient ?? undefined,
      deadTokensThreshold: json.dead_tokens_threshold,
    }),
  },
  // Older SAELens checkpoints store log θ.
  saelensTensorAliases: { threshold: { from: 'log_threshold', convert: Math.exp } },
  // SAELens gates with pre > relu(threshold) on ReLU(pre), i.e. our pre ⊙ H(pre − θ) with θ = max(θ, 0).
  foldSaelens(p) {
    const th = p.threshold.data;
    for (let i = 0; i < th.length; i++) if (th[i]! < 0) th[i] = 0;
  },
});

/**
 * The pre-activation loss on the dead latents: L = (c/B) Σ_rows Σ_{i dead} ReLU(θ_i − pre_ri). Its gradient is
 * −c/B w.r.t. each pre_ri < θ_i of a dead latent (returned as sparse rows for the encoder backward) and +c/B per such
 * row w.r.t. θ_i (added to dTheta).
 */
function preActLoss(ws: Workspace, pre: Tensor, theta: Float32Array, dead: number[], coefficient: number, dTheta: Float64Array): { loss: number; dPre: SparseRows } {
  const [rows, m] = [pre.shape[0]!, pre.shape[1]!];
  const c = coefficient / rows;
  const dPre = ws.sparseRows('preActGrad', rows, m);
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    dPre.reserve(dead.length);
    for (const i of dead) {
      const gap = theta[i]! - pre.data[r * m + i]!;
      if (gap <= 0) continue;
      loss += c * gap;
      dPre.push(i, -c);
      dTheta[i] += c;
    }
    dPre.endRow();
  }
  return { loss, dPre };
}
