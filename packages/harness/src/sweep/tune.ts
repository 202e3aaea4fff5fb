/**
 * The tuning stage: each architecture at its best, selected honestly, before any grid point is trained.
 *
 * Per architecture (and expansion): train at one L0 target — `tuning.target`, default the middle of the grid's
 * targets — over a grid of settings: the learning rates `tuning.lrs` (`tune: 'lr'`), or those × Adam β1 ×
 * the knobs the architecture declares (`tune: 'full'`, `tuningKnobs` in its package). Every run has the full point
 * budget and the point's schedule; λ-based architectures are calibrated to the target at each setting (the
 * calibration is cached as the points' own, so the chosen setting's calibration is reused by its points; a full run
 * that misses the target by more than the tolerance gets one full-length correction, as a point does). Each run
 * trains on the training rows *minus* a validation slice (the last rows of the training split) and is scored on that
 * slice; the rows the report's metrics come from (the held-out split) are never read. The choice is cached per
 * (architecture settings, tuning settings, data, code) and every point of that architecture then trains with it.
 *
 * Selection rule: the lowest validation FVU among the settings whose validation L0 lies within twice the
 * calibration tolerance of the target (a λ-based run lands near, not on, the target, and FVU falls with L0, so a
 * run far above the target would win by sparsity, not by training better) and whose dead fraction over the last
 * training window is under `tuning.maxDead` (default 50%: an lr that leaves half the dictionary dead is not "at its
 * best", however low its FVU; why not the report's 10%: docs/sweep.md). Fallbacks, flagged: no on-target setting under the dead bar → the on-target one with the
 * fewest dead latents (`deadFallback`); none on target → the lowest FVU overall (`offTarget`). k-based
 * architectures land on the target exactly.
 *
 * Edges: a choice at the grid's largest (smallest) lr says the optimum may lie beyond it, so up to
 * `tuning.extendEdges` more lrs are tried past that edge, each the grid's outermost ratio further, with the chosen
 * setting's other fields, and the rule is applied again.
 *
 * Budget check (`tuning.budgetCheck` = f > 0): the chosen setting trained again at f × the point budget, same λ or
 * k, scored on the same validation rows: the evidence for (or against) "the budget converges".
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ArchName, defaultEngine, writeFileAtomic } from '@saelab/core';
import { rowRange, splitHeldOut } from '../data.js';
import { hashOf } from '../hash.js';
import { getArchitecture } from '../registry.js';
import { trainRun } from '../train-run.js';
import { l0Slope } from './calibrate.js';
import { codeVersion, sourceHash } from './code-version.js';
import { type PointSpec, type SweepConfig, trainingFor } from './config.js';
import type { SweepData } from './dataset.js';
import { type PointContext, SweepInterrupted, calibratePoint, trainBase } from './point.js';

/** One setting of the tuning grid: the training fields it overrides. */
export interface TuneSetting {
  lr: number;
  beta1?: number;
  archConfig?: Record<string, number>;
}

export interface TuneEntry extends TuneSetting {
  /** The λ the run trained with (calibrated to the target), or k. */
  sparsity: number;
  /** Validation-slice metrics of the run. */
  l0: number;
  fvu: number;
  mse: number;
  /** Latents that never fired during the last quarter of the run. */
  deadFractionTrainWindow: number;
  /** Latents that never fired on the validation rows (older entries lack it). */
  deadFractionValidation?: number;
  /** Whether L0 lies within the selection band around the target. */
  onTarget: boolean;
  seconds: number;
}

export interface TuneResult {
  arch: ArchName;
  expansion: number;
  target: number;
  mode: 'lr' | 'full';
  /** Rows [start, start + rows) of the training split scored by the tuning runs (never trained on by them). */
  validation: { start: number; rows: number };
  entries: TuneEntry[];
  chosen: TuneEntry;
  /** True when no setting landed within the band and the choice fell back to the lowest FVU overall. */
  offTarget: boolean;
  /** True when every on-target setting had ≥ maxDead dead latents and the one with the fewest was taken. */
  deadFallback?: boolean;
  /** lrs tried beyond the grid's edges (see the header). */
  extendedLrs?: number[];
  /** The chosen setting at `factor` × the budget, scored on the same validation rows. */
  budgetCheck?: { factor: number; l0: number; fvu: number; deadFractionTrainWindow: number; seconds: number };
  rule: string;
}

export const selectionRule = (maxDead: number) =>
  `lowest validation FVU among settings with |L0/target − 1| ≤ 2 × calibration tolerance and < ${100 * maxDead}% dead latents over the last training window`;

/** The L0 target tuned at: `tuning.target`, else the middle grid target (the lower middle for an even count). */
export function tuningTarget(c: SweepConfig): number {
  if (c.tuning.target !== undefined) return c.tuning.target;
  const t = [...c.grid.l0Targets].sort((a, b) => a - b);
  if (t.length === 0) throw new Error('the tuning stage needs an L0 target: give grid.l0Targets or tuning.target');
  return t[Math.floor((t.length - 1) / 2)]!;
}

/**
 * The three disjoint row ranges: tuning runs train on `train`, are scored on `validation` (both inside the
 * training split), and the report's metrics use `evaluation` (the held-out split, after the training rows).
 */
export function tuningSplit(c: SweepConfig, data: Pick<SweepData, 'trainRows' | 'heldOutRows'>): { train: [number, number]; validation: [number, number]; evaluation: [number, number] } {
  const v = Math.max(1, Math.min(c.tuning.validationRows, Math.floor(c.tuning.validationFraction * data.trainRows)));
  if (v >= data.trainRows) throw new Error(`tuning: ${data.trainRows} training rows leave none to train on after a ${v}-row validation slice`);
  return { train: [0, data.trainRows - v], validation: [data.trainRows - v, data.trainRows], evaluation: [data.trainRows, data.trainRows + data.heldOutRows] };
}

/** The grid of settings for one architecture. */
export function tuningGrid(c: SweepConfig, arch: ArchName): TuneSetting[] {
  const lrs = c.tuning.lrs;
  if (c.tune !== 'full') return lrs.map((lr) => ({ lr }));
  const knobs = Object.entries(getArchitecture(arch).tuningKnobs ?? {});
  let grid: TuneSetting[] = lrs.flatMap((lr) => c.tuning.beta1s.map((beta1) => ({ lr, beta1 })));
  for (const [name, values] of knobs) grid = grid.flatMap((s) => values.map((v) => ({ ...s, archConfig: { ...(s.archConfig ?? {}), [name]: v } })));
  return grid;
}

/** The config with one setting applied to an architecture (its `archs.<arch>` override). */
export function withSetting(c: SweepConfig, arch: ArchName, s: TuneSetting): SweepConfig {
  const prev = c.archs[arch] ?? {};
  const archConfig = s.archConfig ? { ...(prev.archConfig ?? {}), ...s.archConfig } : prev.archConfig;
  const over = { ...prev, lr: s.lr, ...(s.beta1 !== undefined ? { beta1: s.beta1 } : {}), ...(archConfig ? { archConfig } : {}) };
  return { ...c, archs: { ...c.archs, [arch]: over } };
}

/** The setting an entry was trained at (its lr, and β1 and knobs where the grid set them). */
function settingOf(e: TuneEntry): TuneSetting {
  const { lr, beta1, archConfig } = e;
  return { lr, ...(beta1 !== undefined ? { beta1 } : {}), ...(archConfig ? { archConfig } : {}) };
}

/** The config every point runs with: each tuned architecture's chosen setting applied. */
export function applyTuning(c: SweepConfig, results: TuneResult[]): SweepConfig {
  let out = c;
  for (const r of results) out = withSetting(out, r.arch, settingOf(r.chosen));
  return out;
}

/** Where one architecture's tuning lives: keyed by its settings without the tuned fields, the tuning settings, data and code. */
function tuningDir(ctx: Pick<PointContext, 'config' | 'data' | 'cacheDir'>, arch: ArchName, expansion: number): string {
  const { config: c, data } = ctx;
  const { lr: _lr, beta1: _b, ...fixed } = trainingFor(c, arch);
  // The selection code is part of the key: a changed rule re-decides (the entries' runs are cached by the same key).
  const key = hashOf({ arch, expansion, training: fixed, tune: c.tune, tuning: c.tuning, target: tuningTarget(c), cal: c.calibration, data: data.fingerprint, code: codeVersion(arch), tuneCode: sourceHash(['harness/src/sweep/tune.ts']) });
  return join(ctx.cacheDir, 'tuning', `${arch}-x${expansion}-${key}`);
}

const settingName = (s: TuneSetting) =>
  [`lr_${s.lr}`, ...(s.beta1 !== undefined ? [`b1_${s.beta1}`] : []), ...Object.entries(s.archConfig ?? {}).map(([k, v]) => `${k}_${v}`)].join('-');

/** Tunes one architecture (cached; an interrupted tuning resumes from its finished entries). */
export async function tuneArchitecture(ctx: PointContext, arch: ArchName, expansion: number): Promise<TuneResult> {
  const c = ctx.config;
  const dir = tuningDir(ctx, arch, expansion);
  const file = join(dir, 'tuning.json');
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as TuneResult;
  await mkdir(dir, { recursive: true });
  const target = tuningTarget(c);
  const split = tuningSplit(c, ctx.data);
  // Train on [0, validation start), score on the validation slice: nothing at or after the evaluation rows is read.
  const rows = splitHeldOut(rowRange(ctx.data.combined, 0, split.validation[1]), split.validation[1] - split.validation[0]);
  const band = 2 * c.calibration.tolerance;
  const entries: TuneEntry[] = [];
  const run = async (s: TuneSetting): Promise<TuneEntry> => {
    const entryFile = join(dir, `${settingName(s)}.json`);
    if (existsSync(entryFile)) return JSON.parse(await readFile(entryFile, 'utf8')) as TuneEntry;
    const hint = entries.length > 0 ? entries[entries.length - 1]!.sparsity : undefined; // the previous setting's λ
    const e = await tuneEntry(ctx, arch, expansion, target, s, rows, band, hint);
    await writeFileAtomic(entryFile, JSON.stringify(e, null, 2) + '\n');
    ctx.log(`  tune ${arch} @ L0 ${target}: ${settingName(s)} → λ/k ${e.sparsity.toPrecision(3)}, L0 ${e.l0.toFixed(1)}, validation FVU ${e.fvu.toFixed(4)}, dead ${(100 * e.deadFractionTrainWindow).toFixed(0)}%`);
    return e;
  };
  for (const s of tuningGrid(c, arch)) entries.push(await run(s));
  const mode = c.tune === 'full' ? 'full' : 'lr';
  const validation = { start: split.validation[0], rows: split.validation[1] - split.validation[0] };
  let result = selectSetting(arch, expansion, target, mode, validation, entries, c.tuning.maxDead);
  // Past the grid's edge while the choice sits on it (see the header).
  const extendedLrs: number[] = [];
  for (let n = 0; n < c.tuning.extendEdges; n++) {
    const next = beyondEdge(entries, result.chosen);
    if (next === null) break;
    extendedLrs.push(next.lr);
    entries.push(await run(next));
    result = selectSetting(arch, expansion, target, mode, validation, entries, c.tuning.maxDead);
  }
  if (extendedLrs.length > 0) result.extendedLrs = extendedLrs;
  if (c.tuning.budgetCheck > 0) result.budgetCheck = await budgetCheck(ctx, arch, expansion, target, result.chosen, rows, c.tuning.budgetCheck);
  await writeFileAtomic(file, JSON.stringify(result, null, 2) + '\n');
  return result;
}

/**
 * The next lr past the grid's edge when the chosen one is the largest (or smallest) lr tried with the chosen
 * setting's other fields, or null: one ratio further, the ratio between the two outermost lrs on that side.
 */
export function beyondEdge(entries: TuneEntry[], chosen: TuneEntry): TuneSetting | null {
  const same = entries.filter((e) => e.beta1 === chosen.beta1 && JSON.stringify(e.archConfig ?? {}) === JSON.stringify(chosen.archConfig ?? {}));
  const lrs = [...new Set(same.map((e) => e.lr))].sort((a, b) => a - b);
  if (lrs.length < 2) return null;
  const round = (v: number) => Number(v.toPrecision(3));
  if (chosen.lr === lrs[lrs.length - 1]) return { ...settingOf(chosen), lr: round(chosen.lr * (lrs[lrs.length - 1]! / lrs[lrs.length - 2]!)) };
  if (chosen.lr === lrs[0]) return { ...settingOf(chosen), lr: round(chosen.lr / (lrs[1]! / lrs[0]!)) };
  return null;
}

/** The selection rule (see the header). */
export function selectSetting(
  arch: ArchName,
  expansion: number,
  target: number,
  mode: 'lr' | 'full',
  validation: TuneResult['validation'],
  entries: TuneEntry[],
  maxDead = 0.5,
): TuneResult {
  if (entries.length === 0) throw new Error(`tuning ${arch}: no settings to choose from`);
  const byFvu = (a: TuneEntry, b: TuneEntry) => a.fvu - b.fvu;
  const byDead = (a: TuneEntry, b: TuneEntry) => a.deadFractionTrainWindow - b.deadFractionTrainWindow || byFvu(a, b);
  const finite = entries.filter((e) => Number.isFinite(e.fvu));
  if (finite.length === 0) throw new Error(`tuning ${arch}: every setting diverged`);
  const onTarget = finite.filter((e) => e.onTarget);
  const alive = onTarget.filter((e) => e.deadFractionTrainWindow < maxDead);
  const base = { arch, expansion, target, mode, validation, entries, rule: selectionRule(maxDead) };
  if (alive.length > 0) return { ...base, chosen: [...alive].sort(byFvu)[0]!, offTarget: false };
  if (onTarget.length > 0) return { ...base, chosen: [...onTarget].sort(byDead)[0]!, offTarget: false, deadFallback: true };
  return { ...base, chosen: [...finite].sort(byFvu)[0]!, offTarget: true };
}

/**
 * A tuning run at sparsity value v: point p's training settings (under `ctx.config`) with `factor` × its budget —
 * warm-ups given in steps scaled with it, so the schedule keeps its fractions — on the tuning split's training rows,
 * scored on its validation rows.
 */
async function tuningRunner(ctx: PointContext, p: PointSpec, rows: ReturnType<typeof splitHeldOut>, factor = 1) {
  const engine = ctx.engine ?? (await defaultEngine());
  const { base, steps } = trainBase(ctx, p, engine);
  const scaled = (n: number | undefined) => (n === undefined || factor === 1 ? n : Math.round(n * factor));
  return async (v: number) => {
    const r = await trainRun({
      ...base,
      lrWarmup: scaled(base.lrWarmup),
      sparsityWarmup: scaled(base.sparsityWarmup),
      train: rows.train,
      heldOut: rows.heldOut,
      steps: factor === 1 ? steps : Math.max(1, Math.round(steps * factor)),
      sparsity: v,
      dataFingerprint: `${ctx.data.fingerprint}/tuning`,
    });
    if (r.interrupted) throw new SweepInterrupted(p.id);
    return { ...r, metrics: r.metrics! };
  };
}

/** The budget check (see the header): the chosen setting at `factor` × the budget, its λ or k kept. */
async function budgetCheck(
  ctx: PointContext,
  arch: ArchName,
  expansion: number,
  target: number,
  chosen: TuneEntry,
  rows: ReturnType<typeof splitHeldOut>,
  factor: number,
): Promise<NonNullable<TuneResult['budgetCheck']>> {
  const c = withSetting(ctx.config, arch, settingOf(chosen));
  const p: PointSpec = { id: `tune-${arch}-budget`, arch, target, sparsity: null, seed: c.tuning.seed, expansion };
  const t0 = performance.now();
  const r = await (await tuningRunner({ ...ctx, config: c }, p, rows, factor))(chosen.sparsity);
  ctx.log(`  tune ${arch}: budget check ×${factor} → L0 ${r.metrics.l0.mean.toFixed(1)}, validation FVU ${r.metrics.fvu?.toFixed(4)} (×1: L0 ${chosen.l0.toFixed(1)}, FVU ${chosen.fvu.toFixed(4)})`);
  return { factor, l0: r.metrics.l0.mean, fvu: r.metrics.fvu ?? NaN, deadFractionTrainWindow: r.deadFractionTrainWindow, seconds: (performance.now() - t0) / 1000 };
}

/** One setting: calibrate λ at the target (λ-based), train the full budget without the validation slice, score on it. */
async function tuneEntry(
  ctx: PointContext,
  arch: ArchName,
  expansion: number,
  target: number,
  s: TuneSetting,
  rows: ReturnType<typeof splitHeldOut>,
  band: number,
  hint: number | undefined,
): Promise<TuneEntry> {
  const c = withSetting(ctx.config, arch, s);
  const sctx: PointContext = { ...ctx, config: c };
  const p: PointSpec = { id: `tune-${arch}-${settingName(s)}`, arch, target, sparsity: null, seed: c.tuning.seed, expansion };
  const direct = getArchitecture(arch).sparsity.forL0Target(target);
  const t0 = performance.now();
  const cal = direct !== null ? null : await calibratePoint(sctx, p, hint);
  const run = await tuningRunner(sctx, p, rows);
  const train = async (v: number) => ({ v, r: await run(v) });
  let best = await train(cal?.lambda ?? direct!);
  // As the points do: a full-length run can land off the short calibration runs' L0, so when it misses by more
  // than the calibration tolerance, one more full-length run along the fitted slope; keep the closer one.
  const miss = (l0: number) => Math.abs(Math.log(Math.max(l0, 1e-3) / target));
  if (cal && ctx.config.calibration.refineRuns > 0 && miss(best.r.metrics.l0.mean) > Math.log1p(ctx.config.calibration.tolerance)) {
    const l0 = best.r.metrics.l0.mean;
    const slope = l0Slope([...cal.trace, { lambda: best.v, l0 }]);
    const next = await train(best.v * Math.exp((Math.log(target) - Math.log(Math.max(l0, 1e-3))) / slope));
    if (miss(next.r.metrics.l0.mean) < miss(l0)) best = next;
  }
  const { v: sparsity, r } = best;
  const l0 = r.metrics.l0.mean;
  return {
    ...s,
    sparsity,
    l0,
    fvu: r.metrics.fvu ?? NaN,
    mse: r.metrics.mse,
    deadFractionTrainWindow: r.deadFractionTrainWindow,
    deadFractionValidation: r.metrics.deadFraction,
    onTarget: Math.abs(l0 / target - 1) <= band,
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * The tuning stage of a sweep: every architecture of the grid tuned (cached), and the config its points run with.
 * With `tune: 'off'` the config is returned as it is.
 */
export async function runTuningStage(ctx: PointContext): Promise<{ config: SweepConfig; results: TuneResult[] }> {
  const c = ctx.config;
  if (c.tune === 'off') return { config: c, results: [] };
  const results: TuneResult[] = [];
  for (const arch of c.grid.architectures) for (const expansion of c.grid.expansions) results.push(await tuneArchitecture(ctx, arch, expansion));
  if (c.grid.expansions.length > 1) {
    // One setting per architecture: the per-expansion choices must agree, or the points would not know which to use.
    for (const arch of c.grid.architectures) {
      const rs = results.filter((r) => r.arch === arch);
      if (new Set(rs.map((r) => settingName(r.chosen))).size > 1) ctx.log(`  tune ${arch}: the expansions chose different settings; using the first expansion's`);
    }
  }
  const firstPerArch = c.grid.architectures.map((a) => results.find((r) => r.arch === a)!);
  return { config: applyTuning(c, firstPerArch), results };
}
