/**
 * `trainRun`: one SAE training run in memory — the programmatic core of `saelab train`, the sweep's points and the
 * λ calibration. From rows in, to parameters (raw activation space, normalisation folded in), held-out metrics and
 * training curves out; no files. The caller decides about files: `onCheckpoint` hands out resumable states and
 * `resume` takes one back (the CLI keeps them in a state file next to its output folder).
 *
 * The run: the architecture's recipe (overridable), the run's one sparsity value read by the architecture
 * (`arch.sparsity`, `arch.runConfig`), the input scale C with E‖x/C‖² = 1 estimated on a sample of training rows,
 * shuffled batches (seeded, bounded memory), `SaeTrainer` steps, then C folded into the weights and the metrics
 * computed on the held-out rows with the SAE in its served form (what its folder loads as).
 */
import {
  type BaseSaeConfig,
  type GemmEngine,
  type LoadedSae,
  type MetricsSummary,
  type Params,
  type RowSource,
  type SaeArchitecture,
  type StepStats,
  type StreamPosition,
  type TrainerOptions,
  type TrainingState,
  OptimizerConfig,
  Rng,
  SaeTrainer,
  ShuffledBatchStream,
  defaultEngine,
  defaultSparsityFor,
  L0Controller,
  defaultL0ControllerOptions,
  estimateNormScale,
  foldInputScale,
  geometricMedian,
  SHORT_RUN_RESAMPLING,
  recipeOptions,
  resampleFor,
  sampleRows,
  scaleRows,
  servedForm,
} from '@saelab/core';
import { evaluateSae } from './evaluate.js';
import { hashOf } from './hash.js';
import { getArchitecture } from './registry.js';
import { CODE_VERSION } from './sae-folder.js';

/** One training run. Only `arch`, `train`, `steps` and `batch` are required; the rest defaults to the recipe. */
export interface TrainRunSpec {
  /** A registered architecture, or its name. */
  arch: string | SaeArchitecture<any, any>;
  /** Training rows, raw activation space. */
  train: RowSource;
  /** Held-out rows for the metrics; without (or with 0 rows) `metrics` is null. */
  heldOut?: RowSource | null;
  /** Dictionary size (default: the init SAE's, else round(expansion · d_in)). */
  dSae?: number;
  /** Dictionary size as a multiple of d_in (default 8). */
  expansion?: number;
  steps: number;
  batch: number;
  /** Seeds the init and the shuffling; the normalisation sample uses seed + 1. */
  seed?: number;
  /** The run's sparsity value, as the architecture reads it (λ, or k); default: the recipe's. */
  sparsity?: number;
  /**
   * One-pass L0 targeting, for architectures whose sparsity value is a penalty λ: a controller moves λ during
   * training so the run lands on this mean L0 (core sae/l0-controller.ts); `sparsity` is its starting λ. λ is
   * held fixed for the last 20% of steps; `finalSparsity` in the result is that λ.
   */
  l0Target?: number;
  /**
   * With `l0Target`: the fraction of the steps after which the controller holds λ fixed; default 1 (it acts to the
   * end: frozen for the last 20% it missed by 6–49% at the default data's tuned lrs, docs/l0-targeting.md).
   */
  l0ControllerFreeze?: number;
  lr?: number;
  optimizer?: 'adam' | 'sgd';
  /** Adam β1 (default: the recipe's). */
  beta1?: number;
  /** Fields of the architecture's config to set (e.g. JumpReLU's `bandwidth`); validated by its schema. */
  archConfig?: Record<string, number | boolean | string>;
  lrWarmup?: number;
  sparsityWarmup?: number;
  lrSchedule?: 'constant' | 'cosine' | 'linear-decay';
  gradClip?: number;
  /**
   * Dead-latent resampling (core sae/resample.ts): default the recipe's (ReLU and Gated resample, as their papers
   * trained); false turns it off; true turns it on where the recipe has none (every 10% of the run up to 60%).
   */
  resample?: boolean;
  /** 'auto': train on x / C with E‖x/C‖² = 1 and fold C back at the end (default); 'none': train on x. */
  normalize?: 'auto' | 'none';
  /** b_dec at init: zero (spec default) or the geometric median of a training sample (Gao et al. 2024). */
  bDecInit?: 'zero' | 'geometric-median';
  /** Start from an SAE (raw-space weights, kept exact: the run trains without normalisation). `label` goes into the run config. */
  init?: { cfg: BaseSaeConfig & Record<string, unknown>; params: Params; label: string } | null;
  /** Tokens without firing before a latent counts as dead, for architectures that track it (`runOptions`). */
  deadTokens?: number;
  /** Rows held by the shuffle buffer (default 65,536). */
  bufferRows?: number;
  /** The training data's fingerprint, recorded in the run config (so a resume on other data is refused). */
  dataFingerprint?: string;
  engine?: GemmEngine;
  /** Aborts cleanly after the current step; the result then carries a checkpoint to resume from. */
  signal?: AbortSignal;
  /** A checkpoint from an earlier run of the same configuration (`ResumeMismatchError` otherwise). */
  resume?: TrainingState;
  /** Steps between `onCheckpoint` calls (default: none). */
  checkpointEvery?: number;
  onCheckpoint?: (state: TrainingState) => Promise<void>;
  /** Called after every step (progress display). */
  onStep?: (s: StepStats, run: { totalSteps: number; startStep: number; seconds: number }) => void;
  /** Steps per curve record (default: about 500 records per run). */
  curveEvery?: number;
  /** Rows per evaluation batch (default 4096). */
  evalBatch?: number;
}

/** One record of the training curves: means over the steps since the previous record. */
export interface CurvePoint {
  /** The step this record ends at (1-based: after `step` optimiser steps). */
  step: number;
  /** Training tokens so far. */
  tokens: number;
  /** Steps averaged. */
  steps: number;
  loss: number;
  /** The architecture's named loss terms (mse, sparsity, auxk, ...). */
  parts: Record<string, number>;
  l0: number;
  fvu: number;
  gradNorm: number;
  /** Learning rate and sparsity coefficient λ at the record's last step. */
  lr: number;
  lambda: number;
  /** Latents that did not fire during the record's steps. */
  deadFraction: number;
  /**
   * Latents that did not fire during the last `deadWindow` steps (a rolling window as long as the dead-fraction
   * metric's training window, the last quarter of the run; all steps so far early on). At the last step it equals
   * `deadFractionTrainWindow`.
   */
  deadFractionRolling: number;
  deadWindow: number;
}

export interface TrainRunResult {
  arch: SaeArchitecture<any, any>;
  cfg: BaseSaeConfig & Record<string, unknown>;
  /** Trained parameters in raw activation space (C folded in). */
  params: Params;
  /** The SAE as its folder loads (`servedForm`): what evaluation and splicing run. */
  served: LoadedSae;
  normScale: number;
  /** Held-out metrics of the served SAE; null without held-out rows. */
  metrics: MetricsSummary | null;
  curves: CurvePoint[];
  steps: number;
  tokens: number;
  /** Seconds of training in this call (a resumed run counts only its own). */
  seconds: number;
  tokensPerSecond: number;
  /** The sparsity value at the end of training: the controller's frozen λ with `l0Target`, else the run's value. */
  finalSparsity: number;
  /** Latents that never fired during the last quarter of training (the metric's "training window"). */
  deadFractionTrainWindow: number;
  /** [first step, last step) of that window. */
  firingWindow: [number, number];
  /** Dead latents resampled during the run (0 without resampling). */
  resampledLatents: number;
  interrupted: boolean;
  /** The state to resume from, when interrupted. */
  checkpoint: TrainingState | null;
  /** Everything that determines the run, hashed into `configHash` (checkpoints carry it). */
  runConfig: Record<string, unknown>;
  configHash: string;
}

/** `resume` holds a checkpoint of another configuration. */
export class ResumeMismatchError extends Error {
  constructor() {
    super('the training state is for a different configuration');
  }
}

/** Trains one SAE in memory. */
export async function trainRun(spec: TrainRunSpec): Promise<TrainRunResult> {
  const arch = typeof spec.arch === 'string' ? getArchitecture(spec.arch) : spec.arch;
  const engine = spec.engine ?? (await defaultEngine());
  const { train, init = null } = spec;
  const heldOut = spec.heldOut ?? null;
  const d = train.d;
  if (init && init.cfg.dIn !== d) throw new Error(`--init SAE has d_in ${init.cfg.dIn} but the activations have d = ${d}`);
  const dSae = init?.cfg.dSae ?? spec.dSae ?? Math.round((spec.expansion ?? 8) * d);
  const totalSteps = spec.steps;
  const batch = spec.batch;
  const seed = spec.seed ?? 0;
  const sparsity = spec.sparsity ?? defaultSparsityFor(arch, { dIn: d, dSae, applyBDecToInput: true });
  const cfg = runConfigOf(arch, {
    ...(init?.cfg ?? {}),
    ...(spec.archConfig ?? {}),
    dIn: d,
    dSae,
    ...(arch.runConfig?.({ sparsity, batch, totalTokens: totalSteps * batch, deadTokens: spec.deadTokens }) ?? {}),
  });
  const trainerOptions = trainerOptionsFor(arch, spec, totalSteps, sparsity, cfg);
  if (spec.l0Target !== undefined && arch.sparsity.forL0Target(spec.l0Target) !== null) {
    throw new Error(`${arch.name} sets its L0 through its sparsity value (${arch.sparsity.name}); an L0 target controller applies to penalty architectures`);
  }
  // An init SAE holds raw-space (folded) weights: keep them exact by training without normalisation.
  const normalize = init ? 'none' : (spec.normalize ?? 'auto');
  const bDecInit = spec.bDecInit ?? 'zero';
  const bufferRows = spec.bufferRows ?? 65_536;
  const runConfig = {
    code: CODE_VERSION,
    arch: arch.name,
    cfg,
    trainer: trainerOptions,
    batch,
    seed,
    normalize,
    bDecInit,
    data: spec.dataFingerprint ?? null,
    init: init?.label ?? null,
    bufferRows,
    evalRows: heldOut?.rows ?? 0,
    ...(spec.l0Target !== undefined ? { l0Target: spec.l0Target, l0ControllerFreeze: spec.l0ControllerFreeze ?? 1 } : {}),
  };
  const configHash = hashOf(runConfig);

  // Normalisation scale C (E‖x/C‖² = 1), estimated on a sample of training rows.
  const needSample = normalize === 'auto' || bDecInit === 'geometric-median';
  const sample = needSample ? await sampleRows(train, Math.min(train.rows, 16_384), seed + 1) : null;
  const normScale = normalize === 'auto' ? estimateNormScale(sample!) : 1;

  const params = init ? init.params : arch.init(cfg, new Rng(seed));
  if (bDecInit === 'geometric-median' && !init) {
    // b_dec lives in the normalised space the SAE trains in (folded back by C at export).
    const { median } = geometricMedian(normScale === 1 ? sample! : scaleRows(sample!, 1 / normScale));
    params.b_dec!.data.set(median);
  }
  const trainer = new SaeTrainer(arch, cfg, params, trainerOptions, { engine });
  if (spec.l0Target !== undefined) {
    trainer.l0Controller = new L0Controller(defaultL0ControllerOptions(spec.l0Target, Math.max(sparsity, 1e-8), totalSteps, trainerOptions.sparsityWarmupSteps, spec.l0ControllerFreeze ?? 1));
  }
  let resumeFrom: StreamPosition | undefined;
  let curves: CurvePoint[] = [];
  if (spec.resume) {
    const state = spec.resume;
    if (state.json.configHash !== configHash) throw new ResumeMismatchError();
    for (const [k, t] of Object.entries(state.params)) params[k]!.data.set(t.data);
    trainer.optimizer.setState(state.optimizer);
    trainer.importState(state.json.trainer as Record<string, unknown>);
    resumeFrom = state.json.stream as StreamPosition;
    curves = (state.json.curves as CurvePoint[] | undefined) ?? [];
  }
  const stream = new ShuffledBatchStream(train, { batchSize: batch, seed, bufferRows, resumeFrom });
  const checkpoint = (): TrainingState => ({
    step: trainer.step,
    params,
    optimizer: trainer.optimizer.getState(),
    json: { configHash, trainer: trainer.exportState(), stream: stream.getPosition(), curves },
  });

  const curve = new CurveRecorder(trainer, batch, spec.curveEvery ?? Math.max(1, Math.round(totalSteps / 500)), totalSteps - Math.floor(0.75 * totalSteps));
  const t0 = performance.now();
  const startStep = trainer.step;
  let interrupted = false;
  // The training window of the dead-fraction metric: the last quarter of the steps.
  const windowStart = Math.floor(0.75 * totalSteps);
  while (trainer.step < totalSteps) {
    if (spec.signal?.aborted) {
      interrupted = true;
      break;
    }
    if (trainer.step === windowStart) trainer.resetFiringWindow();
    const x = await stream.next();
    if (normScale !== 1) scaleRows(x, 1 / normScale, x);
    const s = await trainer.trainStep(x);
    curve.add(s, curves, trainer.step === totalSteps);
    spec.onStep?.(s, { totalSteps, startStep, seconds: (performance.now() - t0) / 1000 });
    if (spec.onCheckpoint && spec.checkpointEvery && trainer.step % spec.checkpointEvery === 0 && trainer.step < totalSteps) await spec.onCheckpoint(checkpoint());
  }
  const seconds = (performance.now() - t0) / 1000;

  const folded = foldInputScale(params, normScale);
  const served = servedForm(arch, cfg, folded);
  const metrics = heldOut && heldOut.rows > 0 ? await evaluateSae(served, heldOut, { engine, batch: spec.evalBatch }) : null;
  return {
    arch,
    cfg,
    params: folded,
    served,
    normScale,
    metrics,
    curves,
    steps: trainer.step,
    tokens: trainer.step * batch,
    seconds,
    tokensPerSecond: ((trainer.step - startStep) * batch) / Math.max(seconds, 1e-9),
    finalSparsity: trainer.l0Controller?.lambda() ?? sparsity,
    deadFractionTrainWindow: trainer.deadFractionInWindow(),
    firingWindow: [trainer.firingWindowStart, trainer.step],
    resampledLatents: trainer.resampledLatents,
    interrupted,
    checkpoint: interrupted ? checkpoint() : null,
    runConfig,
    configHash,
  };
}

/** The architecture's config, or one line naming each bad field (e.g. k larger than d_sae). */
function runConfigOf(arch: SaeArchitecture<any, any>, input: Record<string, unknown>): BaseSaeConfig & Record<string, unknown> {
  const r = arch.configSchema.safeParse(input);
  if (r.success) return r.data as BaseSaeConfig & Record<string, unknown>;
  const issues = r.error.issues.map((i) => {
    const field = i.path.map(String).join('.');
    return `${field} = ${JSON.stringify(input[field])}: ${i.message}`;
  });
  throw new Error(`invalid ${arch.name} config: ${issues.join('; ')}`);
}

/** The recipe for `totalSteps` at `sparsity`, with the run's overrides. */
function trainerOptionsFor(arch: SaeArchitecture<any, any>, o: TrainRunSpec, totalSteps: number, sparsity: number, cfg: BaseSaeConfig): TrainerOptions {
  const recipe = recipeOptions(arch, totalSteps, sparsity, cfg);
  const optimizerKind = o.optimizer ?? recipe.optimizer.kind;
  return {
    ...recipe,
    optimizer: OptimizerConfig.parse(
      optimizerKind === 'sgd'
        ? { kind: 'sgd', lr: o.lr ?? recipe.optimizer.lr }
        : { ...recipe.optimizer, lr: o.lr ?? recipe.optimizer.lr, ...(o.beta1 !== undefined ? { beta1: o.beta1 } : {}) },
    ),
    lrSchedule: o.lrSchedule ?? recipe.lrSchedule,
    lrWarmupSteps: Math.min(totalSteps, o.lrWarmup ?? recipe.lrWarmupSteps),
    sparsityWarmupSteps: o.sparsityWarmup ?? recipe.sparsityWarmupSteps,
    gradClip: o.gradClip ?? recipe.gradClip,
    resample: resampleOf(arch, o.resample, totalSteps, o.seed ?? 0),
  };
}

/** The run's resampling in steps: the recipe's, off (false), or on with the default fractions (true). */
function resampleOf(arch: SaeArchitecture<any, any>, on: boolean | undefined, totalSteps: number, seed: number): TrainerOptions['resample'] {
  if (on === false) return null;
  const fractions = arch.recipe.resample ?? (on ? SHORT_RUN_RESAMPLING : null);
  return fractions ? resampleFor(fractions, totalSteps, seed) : null;
}

/** Averages step statistics over `every` steps into curve records. */
class CurveRecorder {
  private n = 0;
  private sums = { loss: 0, l0: 0, fvu: 0, gradNorm: 0 };
  private parts: Record<string, number> = {};

  constructor(
    private readonly trainer: SaeTrainer<any, any>,
    private readonly batch: number,
    private readonly every: number,
    private readonly deadWindow: number,
  ) {}

  add(s: StepStats, into: CurvePoint[], last: boolean): void {
    this.n++;
    this.sums.loss += s.loss;
    this.sums.l0 += s.l0;
    this.sums.fvu += s.fvu;
    this.sums.gradNorm += s.gradNorm;
    for (const [k, v] of Object.entries(s.parts)) this.parts[k] = (this.parts[k] ?? 0) + v;
    if (s.step % this.every !== 0 && !last) return;
    const n = this.n;
    into.push({
      step: s.step,
      tokens: s.step * this.batch,
      steps: n,
      loss: this.sums.loss / n,
      parts: Object.fromEntries(Object.entries(this.parts).map(([k, v]) => [k, v / n])),
      l0: this.sums.l0 / n,
      fvu: this.sums.fvu / n,
      gradNorm: this.sums.gradNorm / n,
      lr: s.lr,
      lambda: s.sparsityCoeff,
      deadFraction: this.trainer.takeRecentDeadFraction(),
      deadFractionRolling: this.trainer.deadFractionOverLast(this.deadWindow),
      deadWindow: this.deadWindow,
    });
    this.n = 0;
    this.sums = { loss: 0, l0: 0, fvu: 0, gradNorm: 0 };
    this.parts = {};
  }
}
