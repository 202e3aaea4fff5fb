/**
 * One SAE training step, generic over architectures: loss and gradients from the architecture, then the recipe
 * around them — λ warm-up, gradient projection for unit-norm decoders, gradient clipping, the optimiser with an
 * LR schedule, and decoder renormalisation. Data loading, progress, checkpoints and export live in the harness.
 */
import { z } from 'zod';
import { removeParallelGradient, normalizeRows } from '../decoder-norm.js';
import { type Optimizer, OptimizerConfig, createOptimizer } from '../optim.js';
import { type BaseSaeConfig, type SaeArchitecture, type SaeContext, defaultLrFor } from './contract.js';
import type { SparseLossAndGrads } from './ops.js';
import type { L0Controller, L0ControllerState } from './l0-controller.js';
import { Workspace } from '../fast/workspace.js';
import { deadForResampling, isResampleStep, resampleLatents, resampleOptionsSchema } from './resample.js';
import { clipGradNorm, lrAt, warmupCoefficient } from '../schedule.js';
import { type Params, type Tensor, dims2 } from '../tensor.js';

export const trainerOptionsSchema = z.object({
  totalSteps: z.number().int().positive(),
  /** Final sparsity coefficient λ (0 for architectures whose sparsity value lives in their config, e.g. k). */
  sparsity: z.number().nonnegative(),
  optimizer: OptimizerConfig,
  lrSchedule: z.enum(['constant', 'cosine', 'linear-decay']),
  lrWarmupSteps: z.number().int().nonnegative(),
  sparsityWarmupSteps: z.number().int().nonnegative(),
  /** Global gradient-norm clip; 0 = off. */
  gradClip: z.number().nonnegative(),
  /** Parameters held fixed (their gradients are zeroed), e.g. for ablations. */
  freeze: z.array(z.string()).default([]),
  /** Dead-latent resampling (resample.ts), in steps; null = off. */
  resample: resampleOptionsSchema.nullable().default(null),
});
/** The options (`resample` may be left out: off). */
export type TrainerOptions = Omit<z.infer<typeof trainerOptionsSchema>, 'resample'> & { resample?: z.infer<typeof trainerOptionsSchema>['resample'] };

export interface StepStats {
  step: number;
  loss: number;
  parts: Record<string, number>;
  /** Mean active latents per row in this batch. */
  l0: number;
  /** Fraction of variance unexplained in this batch (about the batch mean). */
  fvu: number;
  lr: number;
  sparsityCoeff: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
}

/**
 * The recipe's options for a run of `totalSteps` steps at the run's sparsity value (λ, or k — which the trainer's
 * λ ignores: `arch.sparsity.penalty` gives 0 for a value that lives in the config).
 */
export function recipeOptions(arch: SaeArchitecture<any, any>, totalSteps: number, sparsity: number, cfg?: BaseSaeConfig): TrainerOptions {
  const r = arch.recipe;
  if (typeof r.optimizer.lr === 'function' && !cfg) throw new Error(`recipeOptions: ${arch.name}'s recipe lr depends on the config; pass it`);
  const lr = cfg ? defaultLrFor(arch, cfg) : (r.optimizer.lr as number);
  return {
    totalSteps,
    sparsity: arch.sparsity.penalty(sparsity),
    optimizer: OptimizerConfig.parse({ kind: r.optimizer.kind, lr, beta1: r.optimizer.beta1, beta2: r.optimizer.beta2 }),
    lrSchedule: r.lrSchedule,
    lrWarmupSteps: Math.round(r.lrWarmupFraction * totalSteps),
    sparsityWarmupSteps: Math.round(r.sparsityWarmupFraction * totalSteps),
    gradClip: r.gradClip,
    freeze: [],
    resample: r.resample ? resampleFor(r.resample, totalSteps) : null,
  };
}

/** The recipe's resampling fractions in steps (an event at least every step; none when `until` comes first). */
export function resampleFor(r: { everyFraction: number; untilFraction: number }, totalSteps: number, seed = 0): NonNullable<TrainerOptions['resample']> {
  const every = Math.max(1, Math.round(r.everyFraction * totalSteps));
  return resampleOptionsSchema.parse({ every, until: Math.floor(r.untilFraction * totalSteps), seed });
}

export class SaeTrainer<C extends BaseSaeConfig, S> {
  step = 0;
  readonly optimizer: Optimizer;
  /**
   * 1 for each latent that fired at least once since `resetFiringWindow()` — the "training window" part of the
   * dead-fraction metric (docs/specs/metrics-and-sweeps.md).
   */
  firedInWindow: Uint8Array;
  /** The step at which the firing window was last reset. */
  firingWindowStart = 0;
  /** Per latent, the step count after the last step in which it fired (0: never fired). For rolling dead fractions. */
  lastFired: Float64Array;
  /** 1 for each latent that fired since the last `takeRecentDeadFraction()` (the curves' recent window). */
  private firedRecently: Uint8Array;
  trainState: S;
  /** One-pass L0 targeting: when set, λ comes from this controller (l0-controller.ts) instead of `options.sparsity`. */
  l0Controller: L0Controller | null = null;
  /** The step's context: the caller's engine plus a workspace whose buffers are reused every step. */
  readonly ctx: SaeContext;
  /** Latents resampled so far (resample.ts), over all events. */
  resampledLatents = 0;

  constructor(
    readonly arch: SaeArchitecture<C, S>,
    readonly cfg: C,
    readonly params: Params,
    readonly options: TrainerOptions,
    ctx: SaeContext,
  ) {
    this.optimizer = createOptimizer(options.optimizer, params);
    this.trainState = arch.initTrainState(cfg);
    this.firedInWindow = new Uint8Array(cfg.dSae);
    this.lastFired = new Float64Array(cfg.dSae);
    this.firedRecently = new Uint8Array(cfg.dSae);
    this.ctx = { ...ctx, workspace: (ctx as SaeContext).workspace ?? new Workspace() };
    if (options.resample && !arch.latentResets) throw new Error(`${arch.name} cannot be resampled (it declares no latentResets)`);
  }

  /** λ at the current step (linear warm-up from 0). */
  sparsityCoeff(): number {
    // With an L0 controller (one-pass L0 targeting) λ is the controller's, warmed up the same way.
    return warmupCoefficient(this.step, this.options.sparsityWarmupSteps, this.l0Controller?.lambda() ?? this.options.sparsity);
  }

  lr(): number {
    const o = this.options;
    return lrAt(this.step, o.optimizer.lr, { kind: o.lrSchedule, warmupSteps: o.lrWarmupSteps, totalSteps: o.totalSteps });
  }

  /** One optimisation step on a batch x [B, d] (already normalised). */
  async trainStep(x: Tensor): Promise<StepStats> {
    const [rows, d] = dims2(x, 'training batch');
    if (d !== this.cfg.dIn) throw new Error(`training batch has ${d} columns but the SAE's d_in is ${this.cfg.dIn}`);
    const lambda = this.sparsityCoeff();
    const lr = this.lr();
    this.ctx.workspace!.phase('encode');
    const out = await this.arch.lossAndGrads(this.params, x, this.cfg, lambda, this.trainState, this.ctx);
    if (!Number.isFinite(out.loss)) {
      throw new Error(
        `non-finite loss (${out.loss}) at step ${this.step} (parts: ${JSON.stringify(out.parts)}); ` +
          `the learning rate (${lr}) may be too high or the input may be unnormalised`,
      );
    }
    for (const name of this.options.freeze) {
      const g = out.grads[name];
      if (!g) throw new Error(`freeze: no parameter named '${name}' (have ${Object.keys(out.grads).join(', ')})`);
      g.data.fill(0);
    }
    const ws = this.ctx.workspace!;
    ws.phase('optimiser');
    const unitNorm = this.arch.decoderConstraint(this.cfg) === 'unit-norm';
    if (unitNorm) removeParallelGradient(this.params.W_dec!, out.grads.W_dec!);
    const gradNorm = clipGradNorm(out.grads, this.options.gradClip);
    this.optimizer.step(this.params, out.grads, lr);
    if (unitNorm) normalizeRows(this.params.W_dec!);
    this.arch.afterOptimizerStep?.(this.params, this.cfg, this.trainState);
    this.step++;

    ws.phase('stats');
    const active = (out as Partial<SparseLossAndGrads>).activeLatents;
    let nonzero = 0;
    const fired = this.firedInWindow;
    const last = this.lastFired;
    const recent = this.firedRecently;
    if (active) {
      nonzero = active.countNonzero();
      for (let e = 0; e < active.nnz; e++) if (active.values[e] !== 0) (fired[active.indices[e]!] = recent[active.indices[e]!] = 1), (last[active.indices[e]!] = this.step);
    } else {
      const f = out.latents.data;
      const m = this.cfg.dSae;
      for (let i = 0; i < f.length; i++) if (f[i] !== 0) (nonzero++, (fired[i % m] = recent[i % m] = 1), (last[i % m] = this.step));
    }
    const fvu = batchFvu(x, out.xHat);
    const rs = this.options.resample;
    if (rs && isResampleStep(rs, this.step)) {
      const dead = deadForResampling(this.lastFired, this.step, rs);
      this.resampledLatents += resampleLatents(this.params, dead, x, out.xHat, {
        ...rs,
        step: this.step,
        unitNormDecoder: unitNorm,
        latentResets: this.arch.latentResets!(this.cfg),
        optimizer: this.optimizer,
      });
    }
    ws.phase(null);
    this.l0Controller?.observe(nonzero / rows);
    return { step: this.step, loss: out.loss, parts: out.parts, l0: nonzero / rows, fvu, lr, sparsityCoeff: lambda, gradNorm };
  }

  /** Starts a new firing window at the current step. */
  resetFiringWindow(): void {
    this.firedInWindow.fill(0);
    this.firingWindowStart = this.step;
  }

  /** Fraction of latents that have not fired since the window started. */
  deadFractionInWindow(): number {
    let dead = 0;
    for (const v of this.firedInWindow) if (v === 0) dead++;
    return dead / this.firedInWindow.length;
  }

  /**
   * Fraction of latents that have not fired in the last `steps` steps (all steps so far if fewer): the rolling dead
   * fraction of the training curves. With `steps` = the firing window's length it equals `deadFractionInWindow()`.
   */
  deadFractionOverLast(steps: number): number {
    const since = this.step - steps;
    let dead = 0;
    for (const v of this.lastFired) if (v <= since || v === 0) dead++;
    return dead / this.lastFired.length;
  }

  /** Fraction of latents that did not fire since the previous call (or the start), and a new recent window. */
  takeRecentDeadFraction(): number {
    let dead = 0;
    for (const v of this.firedRecently) if (v === 0) dead++;
    this.firedRecently.fill(0);
    return dead / this.firedRecently.length;
  }

  /** JSON-able training state besides params and optimiser slots. */
  exportState(): Record<string, unknown> {
    const fired: number[] = [];
    this.firedInWindow.forEach((v, i) => v && fired.push(i));
    return {
      step: this.step,
      arch: this.arch.exportTrainState?.(this.trainState) ?? null,
      firingWindow: { start: this.firingWindowStart, fired },
      lastFired: Array.from(this.lastFired),
      resampledLatents: this.resampledLatents,
      ...(this.l0Controller ? { l0Controller: this.l0Controller.exportState() } : {}),
    };
  }

  importState(json: Record<string, unknown>): void {
    this.step = Number(json.step);
    const window = json.firingWindow as { start: number; fired: number[] } | undefined;
    if (window) {
      this.firingWindowStart = window.start;
      this.firedInWindow.fill(0);
      for (const i of window.fired) this.firedInWindow[i] = 1;
    }
    const lastFired = json.lastFired as number[] | undefined;
    if (lastFired && lastFired.length === this.lastFired.length) this.lastFired.set(lastFired);
    this.resampledLatents = Number(json.resampledLatents ?? 0);
    if (json.l0Controller && this.l0Controller) this.l0Controller.importState(json.l0Controller as L0ControllerState);
    if (json.arch && this.arch.importTrainState) this.trainState = this.arch.importTrainState(this.cfg, json.arch as Record<string, unknown>);
  }
}

/**
 * Σ (x − x̂)² / Σ (x − mean_batch(x))², in float64, in one pass: Σ_rows (x − mean)² = Σ x² − B·mean² per column.
 */
export function batchFvu(x: Tensor, xHat: Tensor): number {
  const [rows, d] = dims2(x, 'x');
  const sum = new Float64Array(d);
  const sumSq = new Float64Array(d);
  const a = x.data;
  const b = xHat.data;
  let err = 0;
  for (let r = 0; r < rows; r++)
    for (let j = 0, o = r * d; j < d; j++, o++) {
      const v = a[o]!;
      const e = v - b[o]!;
      err += e * e;
      sum[j] += v;
      sumSq[j] += v * v;
    }
  let tot = 0;
  for (let j = 0; j < d; j++) tot += Math.max(0, sumSq[j]! - (sum[j]! * sum[j]!) / rows);
  return tot === 0 ? 0 : err / tot;
}
