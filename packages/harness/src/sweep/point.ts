/**
 * One sweep point, start to finish: (calibrate λ) → train → held-out metrics → ΔLM loss by splicing x̂ into the
 * LM → `result.json`. Training runs in memory (`trainRun`); the point's folder `<cache>/points/<id>-<hash>/` gets the
 * trained SAE (for the run folder's `saes/`), the result, and while a run is under way its resumable state. The
 * hash covers the point's settings, the data fingerprint and the code version, so a finished point is never
 * recomputed and an interrupted one resumes from the trainer's checkpoint. Calibrations are cached per
 * (architecture settings, target) and shared by seeds.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { cpus, platform } from 'node:os';
import { join } from 'node:path';
import type { SpliceBaseline } from '@saelab/activations';
import { type GemmEngine, type LoadedSae, type MetricsSummary, defaultEngine, defaultSparsityFor, writeFileAtomic } from '@saelab/core';
import { rowRange, splitHeldOut } from '../data.js';
import { type LmFidelity, evaluateSae, lmFidelity, metricsJson } from '../evaluate.js';
import { hashOf } from '../hash.js';
import { getArchitecture } from '../registry.js';
import { saveTrainedSae, stateFile, statePathFor, trainingProgress } from '../train.js';
import { type TrainRunResult, type TrainRunSpec, trainRun } from '../train-run.js';
import { type CalibrationProbe, type CalibrationResult, calibrateLambda, l0Slope, lambdaFromHints } from './calibrate.js';
import { codeVersion } from './code-version.js';
import { type Convergence, convergence, writeCurve } from './curves.js';
import { type PointSpec, type SweepConfig, pointHash, pointKey, trainingFor } from './config.js';
import type { SweepData } from './dataset.js';
import { type PointField, pointFieldMetrics } from './point-field.js';

export const RESULT_FILE = 'result.json';
/** The kept run's learning curve (curves.ts), in the point's folder. */
export const CURVES_FILE = 'curves.jsonl';

export type LmResult = LmFidelity;

export interface PointResult {
  id: string;
  hash: string;
  arch: string;
  target: number | null;
  seed: number;
  expansion: number;
  dSae: number;
  /** The sparsity value the final SAE was trained with, and its name (`arch.sparsity.name`: 'lambda', 'k'). */
  sparsity: { knob: string; value: number };
  calibration: (CalibrationResult & { refined: CalibrationProbe[] }) | null;
  /** One-pass L0 targeting (calibration.method 'controller'): the controller's starting and final λ. */
  controller?: { initialLambda: number; finalLambda: number } | null;
  metrics: Record<string, unknown> & { l0: MetricsSummary['l0']; mse: number; fvu: number | null };
  lm: LmResult | null;
  /** Metrics as SAEBench/SAELens define them, latent density, per-window sums for the bootstrap (point-field.ts). */
  field?: PointField;
  train: {
    steps: number;
    tokens: number;
    seconds: number;
    tokensPerSecond: number;
    calibrationSeconds: number;
    /** Latents that never fired during the last quarter of training (older results lack it). */
    deadFractionTrainWindow?: number;
    /** The curve's convergence check (curves.ts), from `curves.jsonl` in the point's folder. */
    convergence?: Convergence | null;
    /** The learning rate the point trained with (the tuned one when the tuning stage ran); null = the recipe's. */
    lr?: number | null;
    /** Dead latents resampled during training (older results lack it). */
    resampledLatents?: number;
  };
  provenance: Record<string, unknown>;
}

export interface PointContext {
  config: SweepConfig;
  data: SweepData;
  cacheDir: string;
  engine?: GemmEngine;
  quiet?: boolean;
  signal?: AbortSignal;
  log: (s: string) => void;
}

export function pointDir(ctx: Pick<PointContext, 'config' | 'data' | 'cacheDir'>, p: PointSpec): string {
  return join(ctx.cacheDir, 'points', `${p.id}-${pointHash(ctx.config, p, ctx.data.fingerprint, codeVersion(p.arch))}`);
}

export async function readCachedPoint(ctx: Pick<PointContext, 'config' | 'data' | 'cacheDir'>, p: PointSpec): Promise<PointResult | null> {
  const f = join(pointDir(ctx, p), RESULT_FILE);
  return existsSync(f) ? (JSON.parse(await readFile(f, 'utf8')) as PointResult) : null;
}

export class SweepInterrupted extends Error {
  constructor(id: string) {
    super(`interrupted while training ${id}; run the same command again to resume`);
  }
}

/** The training settings every run of a point shares (full-length runs, refinement and calibration probes). */
export type RunSettings = Omit<TrainRunSpec, 'train' | 'heldOut' | 'steps' | 'sparsity'>;

/** Runs (or loads) one point. */
export async function runPoint(ctx: PointContext, p: PointSpec): Promise<{ result: PointResult; cached: boolean }> {
  const cached = await readCachedPoint(ctx, p);
  if (cached) return { result: cached, cached: true };
  const { config: c, data } = ctx;
  const arch = getArchitecture(p.arch);
  const code = codeVersion(p.arch);
  const hash = pointHash(c, p, data.fingerprint, code);
  const dir = pointDir(ctx, p);
  await mkdir(dir, { recursive: true });
  const engine = ctx.engine ?? (await defaultEngine());
  const { base, steps } = trainBase(ctx, p, engine);
  const batch = base.batch;

  // The sparsity value: the explicit one, the target itself where the architecture's value is the L0 (k), or a
  // λ calibrated to the target.
  const t0 = performance.now();
  let calibration: CalibrationResult | null = null;
  let value: number;
  // calibration.method 'controller': one run whose λ a controller steers to the target (no probes, no refinement).
  const controlled = p.target !== null && arch.sparsity.forL0Target(p.target) === null && c.calibration.method === 'controller';
  if (p.target === null) value = p.sparsity!;
  else {
    const direct = arch.sparsity.forL0Target(p.target);
    if (direct !== null) value = direct;
    else if (controlled) value = controllerStart(ctx, p);
    else {
      calibration = await calibrate(ctx, p, base, steps);
      value = calibration.lambda;
    }
  }
  const calibrationSeconds = (performance.now() - t0) / 1000;

  // Full-length runs train on the training rows and are measured on the held-out tail; their state is kept in the
  // point's folder while they run, so an interrupted sweep resumes them.
  const { train, heldOut } = splitHeldOut(data.combined, data.heldOutRows);
  const full = async (name: string, v: number): Promise<TrainRunResult> => {
    const state = stateFile(statePathFor(join(dir, name)));
    const resume = await state.load();
    const bar = ctx.quiet ? null : trainingProgress(p.arch, batch);
    bar?.start(steps, resume?.step ?? 0);
    const r = await trainRun({
      ...base,
      train,
      heldOut,
      steps,
      sparsity: v,
      ...(controlled ? { l0Target: p.target!, l0ControllerFreeze: c.calibration.controllerFreeze } : {}),
      dataFingerprint: data.fingerprint,
      resume,
      checkpointEvery: Math.max(50, Math.ceil(steps / 5)),
      onCheckpoint: state.save,
      onStep: bar?.onStep,
    }).finally(() => bar?.stop());
    if (r.interrupted) {
      await state.save(r.checkpoint!);
      throw new SweepInterrupted(p.id);
    }
    await state.remove();
    return r;
  };
  let r = await full('sae', value);
  const controller = controlled ? { initialLambda: value, finalLambda: r.finalSparsity } : null;
  if (controller) value = controller.finalLambda;

  // Refinement: short calibration runs can land off; one full-length correction along the fitted slope. It
  // measures L0 on a tail of the training rows (which the full run also trained on; L0 barely depends on that),
  // never on the held-out rows of the metrics.
  const refined: CalibrationProbe[] = [];
  if (calibration && p.target !== null && c.calibration.refineRuns > 0) {
    const tail = rowRange(data.combined, data.trainRows - calibrationRows(data), calibrationRows(data));
    const trainL0 = async (run: TrainRunResult) => (await evaluateSae(run.served, tail, { engine })).l0.mean;
    let l0 = await trainL0(r);
    for (let i = 0; i < c.calibration.refineRuns; i++) {
      const miss = Math.abs(Math.log(Math.max(l0, 1e-3) / p.target));
      if (miss <= Math.log1p(c.calibration.tolerance)) break;
      // Each full-length (λ, L0) enters the fit once: the current one is already in `refined` after a retrain.
      if (!refined.some((q) => q.lambda === value)) refined.push({ lambda: value, l0 });
      const slope = l0Slope([...calibration.trace, ...refined]);
      const next = value * Math.exp((Math.log(p.target) - Math.log(Math.max(l0, 1e-3))) / slope);
      ctx.log(`  ${p.id}: full-length L0 ${l0.toFixed(1)} (training rows) misses ${p.target}; retraining at λ ${next.toPrecision(3)}`);
      const r2 = await full('sae-refine', next);
      const l02 = await trainL0(r2);
      const miss2 = Math.abs(Math.log(Math.max(l02, 1e-3) / p.target));
      refined.push({ lambda: next, l0: l02 });
      if (miss2 < miss) {
        r = r2;
        value = next;
        l0 = l02;
      }
    }
  }

  // The kept run's learning curve (trainRun carries it through checkpoints, so a resumed run's is complete).
  await writeCurve(join(dir, CURVES_FILE), r.curves);
  const conv = convergence(r.curves, steps);
  await saveTrainedSae(join(dir, 'sae'), r, { dataFingerprint: data.fingerprint, data: data.description, seed: p.seed, hookName: data.site, modelName: data.lm?.description });
  const lm = data.lm && data.evalWindows ? await lmMetrics(ctx, r.served, c.data.batch) : null;
  const field = await pointFieldMetrics(data, r.served, { cacheDir: ctx.cacheDir, batchWindows: c.data.batch, engine: ctx.engine, log: ctx.log });
  const result: PointResult = {
    id: p.id,
    hash,
    arch: p.arch,
    target: p.target,
    seed: p.seed,
    expansion: p.expansion,
    dSae: Math.round(p.expansion * data.d),
    sparsity: { knob: arch.sparsity.name, value },
    calibration: calibration ? { ...calibration, refined } : null,
    controller,
    metrics: { ...metricsJson(r.metrics!), deadFractionTrainWindow: r.deadFractionTrainWindow } as unknown as PointResult['metrics'],
    lm,
    field,
    train: {
      steps: r.steps,
      tokens: r.tokens,
      seconds: r.seconds,
      tokensPerSecond: r.tokensPerSecond,
      calibrationSeconds,
      deadFractionTrainWindow: r.deadFractionTrainWindow,
      convergence: conv,
      lr: base.lr ?? null,
      resampledLatents: r.resampledLatents,
    },
    provenance: {
      key: pointKey(c, p, data.fingerprint, code),
      codeVersion: code,
      dataFingerprint: data.fingerprint,
      data: data.description,
      site: data.site,
      machine: machineInfo(),
      finishedAt: new Date().toISOString(),
    },
  };
  await writeFileAtomic(join(dir, RESULT_FILE), JSON.stringify(result, null, 2) + '\n');
  return { result, cached: false };
}

/** The settings every training run of a point shares (full run, refinements, calibration probes), and its steps. */
export function trainBase(ctx: Pick<PointContext, 'config' | 'signal'>, p: PointSpec, engine: GemmEngine): { base: RunSettings; steps: number } {
  const t = trainingFor(ctx.config, p.arch);
  const steps = Math.max(1, Math.ceil(t.tokens / t.batch));
  const base: RunSettings = {
    arch: getArchitecture(p.arch),
    expansion: p.expansion,
    batch: t.batch,
    seed: p.seed,
    lr: t.lr,
    beta1: t.beta1,
    archConfig: t.archConfig,
    lrWarmup: t.lrWarmup ?? (t.lrWarmupFraction === undefined ? undefined : Math.round(t.lrWarmupFraction * steps)),
    sparsityWarmup: t.sparsityWarmup ?? (t.sparsityWarmupFraction === undefined ? undefined : Math.round(t.sparsityWarmupFraction * steps)),
    lrSchedule: t.lrSchedule,
    gradClip: t.gradClip,
    resample: t.resample,
    bDecInit: t.bDecInit,
    engine,
    signal: ctx.signal,
  };
  return { base, steps };
}

/**
 * The calibration stage of a point alone: its calibrated λ (cached, shared by seeds), or null for points that need
 * none (architectures whose sparsity value is the L0 itself, explicit values). Schedulers run it as a stage before the points (`sweep-point --calibrate-only`),
 * one family's targets in grid order, so each calibration starts from the same neighbours as in a local sweep.
 */
export async function calibratePoint(ctx: PointContext, p: PointSpec, hint?: number): Promise<CalibrationResult | null> {
  if (p.target === null || getArchitecture(p.arch).sparsity.forL0Target(p.target) !== null || ctx.config.calibration.method === 'controller') return null;
  const { base, steps } = trainBase(ctx, p, ctx.engine ?? (await defaultEngine()));
  return calibrate(ctx, p, base, steps, hint);
}

export function machineInfo(): Record<string, unknown> {
  const cpu = cpus();
  return { cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, platform: platform(), node: process.version };
}

/** Clean / zero-ablated cross-entropies of a dataset's held-out windows, computed once for all its points. */
const baselinesOf = new WeakMap<SweepData, Map<string, SpliceBaseline>>();

/** ΔLM loss and CE recovered on the held-out windows, `batchWindows` windows per forward pass. */
async function lmMetrics(ctx: PointContext, sae: LoadedSae, batchWindows: number): Promise<LmResult> {
  const { lm, evalWindows: ev, site } = ctx.data;
  const windows = { tokens: ev!.tokens, batch: ev!.windows, seqLen: ev!.seqLen };
  if (!baselinesOf.has(ctx.data)) baselinesOf.set(ctx.data, new Map());
  return lmFidelity(lm!.lm, windows, site, sae, { batchWindows, engine: ctx.engine, baselines: baselinesOf.get(ctx.data) });
}

/** Training rows (a tail) on which calibration and refinement measure L0. */
const calibrationRows = (data: SweepData) => Math.max(1, Math.min(4096, Math.floor(data.trainRows * 0.05)));

/**
 * The controller's starting λ: the recipe's, for every point (deterministic, so a point's result does not depend
 * on which other points finished first; the controller reaches the target from ×/÷ 20 away — core test).
 */
function controllerStart(ctx: PointContext, p: PointSpec): number {
  return defaultSparsityFor(getArchitecture(p.arch), { dIn: ctx.data.d, dSae: Math.round(p.expansion * ctx.data.d), applyBDecToInput: true });
}

/** Calibrations of one architecture's settings on one dataset share a folder (targets and seeds reuse it). */
function familyDir(ctx: PointContext, p: PointSpec): string {
  const { config: c, data } = ctx;
  const family = hashOf({ arch: p.arch, expansion: p.expansion, training: trainingFor(c, p.arch), cal: c.calibration, data: data.fingerprint, code: codeVersion(p.arch) });
  return join(ctx.cacheDir, 'calibration', `${p.arch}-${family}`);
}

/** Calibrated λ for a point's target: cached per (arch settings, target), shared across seeds. */
/** `hint`: a starting λ when the family has no calibrated neighbour yet (the tuning stage passes the previous setting's λ). */
async function calibrate(ctx: PointContext, p: PointSpec, base: RunSettings, steps: number, hint?: number): Promise<CalibrationResult> {
  const { config: c, data } = ctx;
  const cal = c.calibration;
  const famDir = familyDir(ctx, p);
  const file = join(famDir, `l0_${p.target}.json`);
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as CalibrationResult;
  await mkdir(famDir, { recursive: true });

  const hints: CalibrationProbe[] = [];
  for (const f of await readdir(famDir)) {
    if (/^l0_\d+\.json$/.test(f)) hints.push(...(JSON.parse(await readFile(join(famDir, f), 'utf8')) as CalibrationResult).trace);
  }
  const arch = getArchitecture(p.arch);
  const calSteps = Math.min(steps, Math.max(cal.minSteps, Math.round(cal.stepsFraction * steps)));
  const scale = calSteps / steps;
  // Probes train on the training rows but a tail, and measure L0 on that tail (never on the held-out rows).
  const { train, heldOut: tail } = splitHeldOut(rowRange(data.combined, 0, data.trainRows), calibrationRows(data));
  const result = await calibrateLambda({
    target: p.target!,
    initialLambda: lambdaFromHints(p.target!, hints) ?? hint ?? defaultSparsityFor(arch, { dIn: data.d, dSae: Math.round(p.expansion * data.d), applyBDecToInput: true }),
    tolerance: cal.tolerance,
    maxIters: cal.maxIters,
    probe: async (lambda) => {
      const r = await trainRun({
        ...base,
        train,
        heldOut: tail,
        seed: cal.seed,
        steps: calSteps,
        sparsity: lambda,
        dataFingerprint: `${data.fingerprint}/train`,
        lrWarmup: base.lrWarmup === undefined ? undefined : Math.round(base.lrWarmup * scale),
        sparsityWarmup: base.sparsityWarmup === undefined ? undefined : Math.round(base.sparsityWarmup * scale),
      });
      if (r.interrupted) throw new SweepInterrupted(p.id);
      return r.metrics!.l0.mean;
    },
    onProbe: (pr, i) => ctx.log(`  calibrate ${p.arch} → L0 ${p.target}: #${i} λ ${pr.lambda.toPrecision(3)} → L0 ${pr.l0.toFixed(1)} (${calSteps} steps)`),
  });
  await writeFileAtomic(file, JSON.stringify(result, null, 2) + '\n');
  return result;
}
