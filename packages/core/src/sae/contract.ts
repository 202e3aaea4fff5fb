/**
 * The SAE architecture contract. Each `@saelab/sae-*` package defines its architectures with `defineSae`
 * (define.ts), which registers them (registry.ts); the trainer, evaluator, CLI and sweeps only ever talk to this
 * interface and look architectures up by name. Parameter names are SAELens's.
 */
import { z } from 'zod';
import type { SparseRows } from '../fast/csr.js';
import type { Workspace } from '../fast/workspace.js';
import type { GemmEngine } from '../gemm.js';
import type { Rng } from '../rng.js';
import type { Params, Tensor } from '../tensor.js';

/** An architecture's name as the CLI, sweeps and point ids spell it (e.g. 'relu', 'batchtopk'). */
export type ArchName = string;
/** SAELens's `architecture` field in cfg.json (e.g. 'standard', 'gated', 'topk', 'jumprelu'). */
export type SaelensArchitecture = string;

/** Fields every architecture's config has. */
export const baseSaeConfigSchema = z.object({
  dIn: z.number().int().positive(),
  dSae: z.number().int().positive(),
  /** Subtract b_dec from the input before encoding (SAELens `apply_b_dec_to_input`). */
  applyBDecToInput: z.boolean().default(true),
});
export type BaseSaeConfig = z.infer<typeof baseSaeConfigSchema>;

/** What the kernels run on. */
export interface SaeContext {
  engine: GemmEngine;
  /**
   * Reusable buffers and the dense/sparse path switch (see fast/workspace.ts). The trainer supplies one; without it
   * every op allocates fresh tensors. Results computed through a workspace are valid until the next step.
   */
  workspace?: Workspace;
}

export interface LossAndGrads<P extends string = string> {
  /** Total loss (the sum of `parts`). */
  loss: number;
  /** Named loss terms, e.g. { mse, sparsity } or { mse, auxk }. */
  parts: Record<string, number>;
  /** Gradient (or the paper's pseudo-gradient) of `loss` for every parameter. */
  grads: Params<P>;
  /** Latent activations f [B, m]. */
  latents: Tensor;
  /** Reconstruction x̂ [B, d]. */
  xHat: Tensor;
  /** The latents as CSR rows (active entries only), when the architecture computed them sparsely. */
  activeLatents?: SparseRows;
}

/** The paper's recommended training settings, used as CLI defaults. */
export interface TrainingRecipe {
  /** `lr` may be a function of the config where the reference scales it (TopK: 2e-4/√(m/2¹⁴)); see `defaultLrFor`. */
  optimizer: { kind: 'adam' | 'adamw' | 'sgd'; lr: number | ((cfg: BaseSaeConfig) => number); beta1: number; beta2: number };
  lrSchedule: 'constant' | 'cosine' | 'linear-decay';
  /** Fraction of total steps for the linear LR warm-up. */
  lrWarmupFraction: number;
  /** Fraction of total steps over which the sparsity coefficient λ rises linearly from 0 (0 = off). */
  sparsityWarmupFraction: number;
  /** Global gradient-norm clip (0 = off). */
  gradClip: number;
  /**
   * Default sparsity value (λ, or k — see `SaeArchitecture.sparsity`); a function of the config where the paper's
   * value depends on the input scale (read it through `defaultSparsityFor`).
   */
  defaultSparsity: number | ((cfg: BaseSaeConfig) => number);
  /**
   * Dead-latent resampling (resample.ts) as fractions of the run: an event every `everyFraction` of the steps up to
   * `untilFraction`. For the architectures whose papers trained with it (ReLU: Bricken et al. 2023; Gated:
   * Rajamanoharan et al. 2024a); absent: off.
   */
  resample?: { everyFraction: number; untilFraction: number };
}

/** The recipe's default sparsity value for `cfg`. */
export function defaultSparsityFor(arch: { recipe: TrainingRecipe }, cfg: BaseSaeConfig): number {
  const d = arch.recipe.defaultSparsity;
  return typeof d === 'function' ? d(cfg) : d;
}

/** The recipe's default learning rate for `cfg`. */
export function defaultLrFor(arch: { recipe: TrainingRecipe }, cfg: BaseSaeConfig): number {
  const lr = arch.recipe.optimizer.lr;
  return typeof lr === 'function' ? lr(cfg) : lr;
}

/**
 * How an architecture reads the one sparsity value of a run. Harness, sweeps and tools only go through these
 * functions, so they need no per-architecture branches. The two kinds in use are `penaltySparsity` (λ) and
 * `kSparsity` (k) below.
 */
export interface SparsityKnob {
  /** The value's name in logs, JSON and point ids ('lambda', 'k'). */
  readonly name: string;
  /** Its short form in point ids ('lam', 'k'). */
  readonly short: string;
  /** The `saelab train` option that carries it ('sparsity' → `--sparsity`, 'k' → `--k`). */
  readonly flag: 'sparsity' | 'k';
  /** Whether only integers are meaningful (k). */
  readonly integer: boolean;
  /** The coefficient λ the trainer applies (warmed up per the recipe) for a run at `value`: 0 when the value lives in the config. */
  penalty(value: number): number;
  /** The value that gives mean L0 = `target` by construction (k = target), or null when it must be calibrated (λ). */
  forL0Target(target: number): number | null;
}

/** The value is the coefficient λ of a sparsity penalty: warmed up by the trainer, calibrated to an L0 target by sweeps. */
export const penaltySparsity: SparsityKnob = {
  name: 'lambda',
  short: 'lam',
  flag: 'sparsity',
  integer: false,
  penalty: (v) => v,
  forL0Target: () => null,
};

/** The value is k, the active latents per row (on average, for batch-level selection): set in the config (`runConfig`). */
export const kSparsity: SparsityKnob = {
  name: 'k',
  short: 'k',
  flag: 'k',
  integer: true,
  penalty: () => 0,
  forL0Target: (target) => target,
};

/** What a run tells the architecture when it builds the config (`SaeArchitecture.runConfig`). */
export interface RunInfo {
  /** The run's sparsity value (λ or k, as `sparsity` says). */
  sparsity: number;
  /** Rows per step. */
  batch: number;
  /** Training tokens of the whole run (steps × batch). */
  totalTokens: number;
  /** Tokens without firing before a latent counts as dead (AuxK), when the user gave it. */
  deadTokens?: number;
}

/** The `saelab train` options an architecture may read besides the sparsity value (see `SaeArchitecture.runOptions`). */
export type RunOption = 'deadTokens';

export interface SaeArchitecture<C extends BaseSaeConfig = BaseSaeConfig, S = unknown, P extends string = string> {
  readonly name: ArchName;
  /** The `architecture` written to cfg.json. */
  readonly saelensArchitecture: SaelensArchitecture;
  /**
   * The registered architecture whose folder this one writes and which serves it at inference, when that is
   * another one (BatchTopK → 'jumprelu': a JumpReLU with one global threshold). Such folders load as that
   * architecture, and the harness evaluates a trained SAE in that served form.
   */
  readonly servedAs?: ArchName;
  /** Module URL (`import.meta.url`) of the file that defines it: its folder's sources enter the sweep cache key. */
  readonly source: string;
  /** How this architecture reads a run's sparsity value. */
  readonly sparsity: SparsityKnob;
  /** 'unit-norm': the trainer removes the gradient parallel to each W_dec row and renormalises rows after each step. */
  decoderConstraint(cfg: C): 'unit-norm' | 'none';
  readonly configSchema: z.ZodType<C, any>;
  readonly recipe: TrainingRecipe;
  /**
   * Config fields worth tuning and the values to try (the sweep's `tune: 'full'` crosses them with the learning
   * rates and Adam β1), e.g. JumpReLU's STE bandwidth.
   */
  readonly tuningKnobs?: Readonly<Record<string, readonly number[]>>;
  /**
   * Config fields that come from the run rather than from the user's config: the sparsity value when it lives in
   * the config (TopK's k) and windows measured in training tokens (AuxK's dead-latent threshold).
   */
  runConfig?(run: RunInfo): Partial<C>;
  /** The run options `runConfig` reads (a run that sets another one is an error, not silently ignored). */
  readonly runOptions?: readonly RunOption[];

  /** Shapes of every parameter, by SAELens name. */
  paramShapes(cfg: C): Record<P, number[]>;
  /** Fresh parameters (spec: W_dec random directions, W_enc = W_decᵀ, biases zero, plus the architecture's own). */
  init(cfg: C, rng: Rng): Params<P>;
  /** Latents f [B, m] for inputs x [B, d]. */
  encode(params: Params<P>, x: Tensor, cfg: C, ctx: SaeContext): Promise<Tensor>;
  /** Reconstruction x̂ [B, d] from latents f [B, m]. */
  decode(params: Params<P>, latents: Tensor, cfg: C, ctx: SaeContext): Promise<Tensor>;
  /** Mutable per-run training state (e.g. TopK's steps-since-fired counters). */
  initTrainState(cfg: C): S;
  /**
   * Loss, its parts, and gradients for one batch. `sparsityCoeff` is the current λ (after warm-up; 0 for
   * architectures whose sparsity value lives in the config). May update `state` (e.g. dead-latent tracking).
   */
  lossAndGrads(params: Params<P>, x: Tensor, cfg: C, sparsityCoeff: number, state: S, ctx: SaeContext): Promise<LossAndGrads<P>>;
  /**
   * Moves the parameters so that latent i fires where its pre-activation exceeds `cut[i]` (its bias, threshold or
   * gate): a trained-like sparsity for benchmarks, without training. Absent where the sparsity value sets L0 itself (k).
   */
  setFiringCut?(params: Params<P>, cut: Float32Array): void;
  /**
   * Called after every optimiser step (after decoder renormalisation), e.g. to keep parameters in their domain or
   * bound a step; `state` is the run's training state (as `lossAndGrads` left it before the step).
   */
  afterOptimizerStep?(params: Params<P>, cfg: C, state?: S): void;
  /**
   * The value each per-latent vector other than W_enc's column and W_dec's row takes when a dead latent is
   * resampled (resample.ts), e.g. { b_enc: 0 }. Absent: the architecture cannot be resampled.
   */
  latentResets?(cfg: C): Record<string, number>;
  /** Training state to JSON (for resumable checkpoints) and back; omit when the state is undefined. */
  exportTrainState?(state: S): Record<string, unknown>;
  importTrainState?(cfg: C, json: Record<string, unknown>): S;
  /** cfg.json fields specific to this architecture (besides the common ones), and back. */
  toSaelensConfig(cfg: C): Record<string, unknown>;
  fromSaelensConfig(json: Record<string, unknown>): C;

  /**
   * Whether a cfg.json (SAELens's, any version) holds this architecture; default: its `architecture` field is
   * `saelensArchitecture`. Lets TopK also claim pre-6.0 'standard' folders with `activation_fn_str: 'topk'`.
   */
  readsSaelens?(json: Record<string, unknown>): boolean;
  /** Tensors older SAELens folders store under another name, and how to convert them (JumpReLU: θ = exp(log_threshold)). */
  readonly saelensTensorAliases?: Readonly<Record<string, { from: string; convert: (v: number) => number }>>;
  /**
   * Folds SAELens's inference-time conventions into plain weights, in place, after a folder's tensors were
   * checked (TopK: `rescale_acts_by_decoder_norm`; JumpReLU: θ = max(θ, 0)), so encode/decode give SAELens's outputs.
   */
  foldSaelens?(params: Params<P>, cfg: C, json: Record<string, unknown>): void;
}
