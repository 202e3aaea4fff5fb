/**
 * The SAE architecture contract. Each `@saelab/sae-*` package exports one object implementing it; the
 * trainer, evaluator, CLI and sweeps only ever talk to this interface. Parameter names are SAELens's.
 */
import { z } from 'zod';
import type { SparseRows } from '../fast/csr.js';
import type { Workspace } from '../fast/workspace.js';
import type { GemmEngine } from '../gemm.js';
import type { Rng } from '../rng.js';
import type { Params, Tensor } from '../tensor.js';

export type ArchName = 'relu' | 'gated' | 'topk' | 'jumprelu' | 'batchtopk';
export type SaelensArchitecture = 'standard' | 'gated' | 'topk' | 'jumprelu';

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

export interface LossAndGrads {
  /** Total loss (the sum of `parts`). */
  loss: number;
  /** Named loss terms, e.g. { mse, sparsity } or { mse, auxk }. */
  parts: Record<string, number>;
  /** Gradient (or the paper's pseudo-gradient) of `loss` for every parameter. */
  grads: Params;
  /** Latent activations f [B, m]. */
  latents: Tensor;
  /** Reconstruction x̂ [B, d]. */
  xHat: Tensor;
  /** The latents as CSR rows (active entries only), when the architecture computed them sparsely. */
  activeLatents?: SparseRows;
}

/** The paper's recommended training settings, used as CLI defaults. */
export interface TrainingRecipe {
  optimizer: { kind: 'adam' | 'adamw' | 'sgd'; lr: number; beta1: number; beta2: number };
  lrSchedule: 'constant' | 'cosine' | 'linear-decay';
  /** Fraction of total steps for the linear LR warm-up. */
  lrWarmupFraction: number;
  /** Fraction of total steps over which the sparsity coefficient λ rises linearly from 0 (0 = off). */
  sparsityWarmupFraction: number;
  /** Global gradient-norm clip (0 = off). */
  gradClip: number;
  /**
   * Default sparsity value: λ for λ-based architectures, k for TopK; a function of the config where the paper's
   * value depends on the input scale (read it through `defaultSparsityFor`).
   */
  defaultSparsity: number | ((cfg: BaseSaeConfig) => number);
}

/** The recipe's default λ / k for `cfg`. */
export function defaultSparsityFor(arch: { recipe: TrainingRecipe }, cfg: BaseSaeConfig): number {
  const d = arch.recipe.defaultSparsity;
  return typeof d === 'function' ? d(cfg) : d;
}

export interface SaeArchitecture<C extends BaseSaeConfig = BaseSaeConfig, S = unknown> {
  readonly name: ArchName;
  readonly saelensArchitecture: SaelensArchitecture;
  /** What `--sparsity` means: the L1/L0 coefficient λ, or the exact number of active latents k. */
  readonly sparsityKnob: 'lambda' | 'k';
  /** 'unit-norm': the trainer removes the gradient parallel to each W_dec row and renormalises rows after each step. */
  decoderConstraint(cfg: C): 'unit-norm' | 'none';
  readonly configSchema: z.ZodType<C, any>;
  readonly recipe: TrainingRecipe;

  /** Shapes of every parameter, by SAELens name. */
  paramShapes(cfg: C): Record<string, number[]>;
  /** Fresh parameters (spec: W_dec random directions, W_enc = W_decᵀ, biases zero, plus the architecture's own). */
  init(cfg: C, rng: Rng): Params;
  /** Latents f [B, m] for inputs x [B, d]. */
  encode(params: Params, x: Tensor, cfg: C, ctx: SaeContext): Promise<Tensor>;
  /** Reconstruction x̂ [B, d] from latents f [B, m]. */
  decode(params: Params, latents: Tensor, cfg: C, ctx: SaeContext): Promise<Tensor>;
  /** Mutable per-run training state (e.g. TopK's steps-since-fired counters). */
  initTrainState(cfg: C): S;
  /**
   * Loss, its parts, and gradients for one batch. `sparsityCoeff` is the current λ (after warm-up); TopK ignores it.
   * May update `state` (e.g. dead-latent tracking).
   */
  lossAndGrads(params: Params, x: Tensor, cfg: C, sparsityCoeff: number, state: S, ctx: SaeContext): Promise<LossAndGrads>;
  /** Called after every optimiser step (after decoder renormalisation), e.g. to keep parameters in their domain. */
  afterOptimizerStep?(params: Params, cfg: C): void;
  /** Training state to JSON (for resumable checkpoints) and back; omit when the state is undefined. */
  exportTrainState?(state: S): Record<string, unknown>;
  importTrainState?(cfg: C, json: Record<string, unknown>): S;
  /** cfg.json fields specific to this architecture (besides the common ones), and back. */
  toSaelensConfig(cfg: C): Record<string, unknown>;
  fromSaelensConfig(json: Record<string, unknown>): C;
}
