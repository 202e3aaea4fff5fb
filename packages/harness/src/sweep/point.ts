/**
 * One sweep point, start to finish: (calibrate λ) → train → held-out metrics → ΔLM loss by splicing x̂ into the
 * LM → `result.json`. Everything lives in `<cache>/points/<hash>/`, the hash covering the point's settings, the
 * data fingerprint and the code version, so a finished point is never recomputed and an interrupted one resumes
 * from the trainer's checkpoint. Calibrations are cached per (architecture settings, target) and shared by seeds.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { cpus, platform } from 'node:os';
import { join } from 'node:path';
import type { SpliceBaseline } from '@saelab/activations';
import { type GemmEngine, type MetricsSummary, defaultEngine, defaultSparsityFor, writeFileAtomic } from '@saelab/core';
import { type ActivationInput, rowRange } from '../data.js';
import { type LmFidelity, evaluateSae, lmFidelity, metricsJson } from '../evaluate.js';
import { getArchitecture } from '../registry.js';
import { loadSae } from '../sae-folder.js';
import { hashOf } from '../hash.js';
import { type TrainOptions, type TrainResult, trainSae } from '../train.js';
import { type CalibrationProbe, type CalibrationResult, calibrateLambda, l0Slope, lambdaFromHints } from './calibrate.js';
import { codeVersion } from './code-version.js';
import { type PointSpec, type SweepConfig, pointHash, pointKey, trainingFor } from './config.js';
import type { SweepData } from './dataset.js';
import { type PointField, pointFieldMetrics } from './point-field.js';

export const RESULT_FILE = 'result.json';

export type LmResult = LmFidelity;

export interface PointResult {
  id: string;
  hash: string;
  arch: string;
  target: number | null;
  seed: number;
  expansion: number;
  dSae: number;
  /** The sparsity setting the final SAE was trained with. */
  sparsity: { knob: 'lambda' | 'k'; value: number };
  calibration: (CalibrationResult & { refined: CalibrationProbe[] }) | null;
  /** One-pass L0 targeting (calibration.method 'controller'): the controller's starting and final λ. */
  controller?: { initialLambda: number; finalLambda: number } | null;
  metrics: Record<string, unknown> & { l0: MetricsSummary['l0']; mse: number; fvu: number | null };
  lm: LmResult | null;
  /** Metrics as SAEBench/SAELens define them, latent density, per-window sums for the bootstrap (point-field.ts). */
  field?: PointField;
  train: { steps: number; tokens: number; seconds: number; tokensPerSecond: number; calibrationSeconds: number };
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

const asInput = (src: { rows: number; d: number; readRows: ActivationInput['readRows'] }, description: string, fingerprint: string): ActivationInput => ({
  rows: src.rows,
  d: src.d,
  readRows: (s, n) => src.readRows(s, n),
  description,
  fingerprint,
  close: async () => undefined,
});

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
  const { base, steps } = trainBase(ctx, p);

  // The sparsity setting: k = target for TopK, a calibrated λ for the others, or the explicit value.
  const t0 = performance.now();
  let calibration: CalibrationResult | null = null;
  let value: number;
  const controlled = p.target !== null && arch.sparsityKnob !== 'k' && c.calibration.method === 'controller';
  if (p.target === null) value = p.sparsity!;
  else if (arch.sparsityKnob === 'k') value = p.target;
  else if (controlled) value = controllerStart(ctx, p);
  else {
    calibration = await calibrate(ctx, p, base, steps);
    value = calibration.lambda;
  }
  const calibrationSeconds = (performance.now() - t0) / 1000;

  const full = (out: string, v: number): Promise<TrainResult> =>
    trainSae(
      { ...base, out, steps, evalRows: data.heldOutRows, quiet: ctx.quiet ?? false, ...(arch.sparsityKnob === 'k' ? { k: v } : { sparsity: v }), ...(controlled ? { l0Target: p.target! } : {}) },
      { engine, signal: ctx.signal, source: asInput(data.combined, data.description, data.fingerprint) },
    );
  const saeDir = join(dir, 'sae');
  let r = await full(saeDir, value);
  if (r.interrupted) throw new SweepInterrupted(p.id);
  const controller = controlled ? { initialLambda: value, finalLambda: r.finalSparsity! } : null;
  if (controller) value = controller.finalLambda;

  // Refinement: short calibration runs can land off; one full-length correction along the fitted slope. It
  // measures L0 on a tail of the training rows (which the full run also trained on; L0 barely depends on that),
  // never on the held-out rows of the metrics.
  const refined: CalibrationProbe[] = [];
  if (calibration && p.target !== null && c.calibration.refineRuns > 0) {
    const tail = rowRange(data.combined, data.trainRows - calibrationRows(data), calibrationRows(data));
    const trainL0 = async (out: string) => (await evaluateSae(await loadSae(out), tail, { engine })).l0.mean;
    let l0 = await trainL0(saeDir);
    for (let i = 0; i < c.calibration.refineRuns; i++) {
      const miss = Math.abs(Math.log(Math.max(l0, 1e-3) / p.target));
      if (miss <= Math.log1p(c.calibration.tolerance)) break;
      // Each full-length (λ, L0) enters the fit once: the current one is already in `refined` after a retrain.
      if (!refined.some((q) => q.lambda === value)) refined.push({ lambda: value, l0 });
      const slope = l0Slope([...calibration.trace, ...refined]);
      const next = value * Math.exp((Math.log(p.target) - Math.log(Math.max(l0, 1e-3))) / slope);
      ctx.log(`  ${p.id}: full-length L0 ${l0.toFixed(1)} (training rows) misses ${p.target}; retraining at λ ${next.toPrecision(3)}`);
      const alt = join(dir, 'sae-refine');
      const r2 = await full(alt, next);
      if (r2.interrupted) throw new SweepInterrupted(p.id);
      const l02 = await trainL0(alt);
      const miss2 = Math.abs(Math.log(Math.max(l02, 1e-3) / p.target));
      refined.push({ lambda: next, l0: l02 });
      if (miss2 < miss) {
        await rm(saeDir, { recursive: true, force: true });
        await rename(alt, saeDir);
        r = { ...r2, out: saeDir };
        value = next;
        l0 = l02;
      } else await rm(alt, { recursive: true, force: true });
    }
  }

  const lm = data.lm && data.evalWindows ? await lmMetrics(ctx, saeDir, c.data.batch) : null;
  const field = await pointFieldMetrics(data, saeDir, { cacheDir: ctx.cacheDir, batchWindows: c.data.batch, engine: ctx.engine, log: ctx.log });
  const result: PointResult = {
    id: p.id,
    hash,
    arch: p.arch,
    target: p.target,
    seed: p.seed,
    expansion: p.expansion,
    dSae: Math.round(p.expansion * data.d),
    sparsity: { knob: arch.sparsityKnob, value },
    calibration: calibration ? { ...calibration, refined } : null,
    controller,
    metrics: { ...metricsJson(r.metrics), deadFractionTrainWindow: r.deadFractionTrainWindow } as unknown as PointResult['metrics'],
    lm,
    field,
    train: { steps: r.steps, tokens: r.tokens, seconds: r.seconds, tokensPerSecond: r.tokensPerSecond, calibrationSeconds },
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

/** The options every training run of a point shares (full run, refinements, calibration probes). */
function trainBase(ctx: Pick<PointContext, 'config' | 'data'>, p: PointSpec): { base: Omit<TrainOptions, 'out'>; steps: number } {
  const { config: c, data } = ctx;
  const t = trainingFor(c, p.arch);
  const steps = Math.max(1, Math.ceil(t.tokens / t.batch));
  const base: Omit<TrainOptions, 'out'> = {
    arch: p.arch,
    activations: data.description,
    expansion: p.expansion,
    batch: t.batch,
    seed: p.seed,
    lr: t.lr,
    lrWarmup: t.lrWarmup,
    sparsityWarmup: t.sparsityWarmup,
    lrSchedule: t.lrSchedule,
    gradClip: t.gradClip,
    bDecInit: t.bDecInit,
    hookName: data.site,
    modelName: data.lm?.description,
    checkpointEvery: Math.max(50, Math.ceil(steps / 5)),
  };
  return { base, steps };
}

/**
 * The calibration stage of a point alone: its calibrated λ (cached, shared by seeds), or null for points that need
 * none (TopK/BatchTopK, explicit λ). Schedulers run it as a stage before the points (`sweep-point --calibrate-only`),
 * one family's targets in grid order, so each calibration starts from the same neighbours as in a local sweep.
 */
export async function calibratePoint(ctx: PointContext, p: PointSpec): Promise<CalibrationResult | null> {
  if (p.target === null || getArchitecture(p.arch).sparsityKnob === 'k') return null;
  const { base, steps } = trainBase(ctx, p);
  return calibrate(ctx, p, base, steps);
}

export function machineInfo(): Record<string, unknown> {
  const cpu = cpus();
  return { cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, platform: platform(), node: process.version };
}

/** Clean / zero-ablated cross-entropies of a dataset's held-out windows, computed once for all its points. */
const baselinesOf = new WeakMap<SweepData, Map<string, SpliceBaseline>>();

/** ΔLM loss and CE recovered on the held-out windows, `batchWindows` windows per forward pass. */
async function lmMetrics(ctx: PointContext, saeDir: string, batchWindows: number): Promise<LmResult> {
  const { lm, evalWindows: ev, site } = ctx.data;
  const sae = await loadSae(saeDir);
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
async function calibrate(ctx: PointContext, p: PointSpec, base: Omit<TrainOptions, 'out'>, steps: number): Promise<CalibrationResult> {
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
  const calRows = calibrationRows(data);
  const source = asInput(rowRange(data.combined, 0, data.trainRows), `${data.description} (calibration)`, `${data.fingerprint}/train`);
  const tmp = join(famDir, `tmp-${process.pid}-${p.target}`);
  const engine = ctx.engine ?? (await defaultEngine());
  try {
    const result = await calibrateLambda({
      target: p.target!,
      initialLambda: lambdaFromHints(p.target!, hints) ?? defaultSparsityFor(arch, { dIn: data.d, dSae: Math.round(p.expansion * data.d), applyBDecToInput: true }),
      tolerance: cal.tolerance,
      maxIters: cal.maxIters,
      probe: async (lambda) => {
        const r = await trainSae(
          {
            ...base,
            seed: cal.seed,
            out: tmp,
            steps: calSteps,
            sparsity: lambda,
            evalRows: calRows,
            quiet: true,
            checkpointEvery: calSteps + 1,
            lrWarmup: base.lrWarmup === undefined ? undefined : Math.round(base.lrWarmup * scale),
            sparsityWarmup: base.sparsityWarmup === undefined ? undefined : Math.round(base.sparsityWarmup * scale),
          },
          { engine, signal: ctx.signal, source },
        );
        if (r.interrupted) throw new SweepInterrupted(p.id);
        return r.metrics.l0.mean;
      },
      onProbe: (pr, i) => ctx.log(`  calibrate ${p.arch} → L0 ${p.target}: #${i} λ ${pr.lambda.toPrecision(3)} → L0 ${pr.l0.toFixed(1)} (${calSteps} steps)`),
    });
    await writeFileAtomic(file, JSON.stringify(result, null, 2) + '\n');
    return result;
  } finally {
    await rm(tmp, { recursive: true, force: true });
    await rm(`${tmp}.train-state.safetensors`, { force: true });
  }
}
