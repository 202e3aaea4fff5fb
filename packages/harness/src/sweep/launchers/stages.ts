/**
 * What a scheduler runs for a sweep, shared by the Slurm and Kubernetes launchers: the stages and the tasks in
 * each, expressed as `saelab sweep-point` invocations so every task is the same CLI entry point a local `--jobs`
 * fan-out uses.
 *
 *   1. prepare   (once, before submitting): LM build + harvest into the shared cache (`prepareSweepData`).
 *   2. calibrate (one task per calibration family = architecture × expansion with L0 targets): the family's targets
 *                in grid order, each `sweep-point --calibrate-only`. A family runs in one task, in order, because a
 *                calibration starts from its already calibrated neighbours (calibrate.ts, `lambdaFromHints`): run in
 *                grid order it sees exactly the neighbours a local sweep's calibration sees, so it finds the same λ
 *                and the points reproduce the local run. Running calibration inside each point task instead would
 *                let seeds race on the same target and give each target a neighbour set that depends on timing.
 *   3. points    (one task per pending point): `sweep-point`, the calibration a cache hit. Depends on stage 2.
 *   4. merge     (after the points): `saelab sweep` with the same config, every point a cache hit.
 */
import { getArchitecture } from '../../registry.js';
import type { PointSpec, SweepConfig } from '../config.js';
import { expandGrid } from '../config.js';
import { type SweepData, prepareSweepData } from '../dataset.js';
import { calibratePoint, readCachedPoint } from '../point.js';
import { hashOf } from '../../hash.js';
import { resolve } from 'node:path';
import { defaultCacheDir } from '../run.js';

export interface StagePlan {
  /** Calibration tasks: each lists one family's point ids (one per target, grid order) to `--calibrate-only`. */
  calibration: string[][];
  /** Point tasks: one point id each. */
  points: string[];
}

const needsCalibration = (p: PointSpec) => p.target !== null && getArchitecture(p.arch).sparsity.forL0Target(p.target) === null;
const familyOf = (p: PointSpec) => `${p.arch}-x${p.expansion}`;

/**
 * The tasks for `pending` points of `grid`. A calibration family is included when one of its pending points needs
 * a calibration; it then lists every target of the family (finished calibrations are cache hits), so a target
 * always starts from the same neighbours.
 */
export function planStages(grid: PointSpec[], pending: PointSpec[], method: SweepConfig['calibration']['method'] = 'probe'): StagePlan {
  // With one-pass L0 targeting (the controller) no point needs a calibration stage.
  if (method === 'controller') return { calibration: [], points: pending.map((p) => p.id) };
  const families = new Set(pending.filter(needsCalibration).map(familyOf));
  const calibration = new Map<string, Map<number, string>>();
  for (const p of grid) {
    if (!needsCalibration(p) || !families.has(familyOf(p))) continue;
    const targets = calibration.get(familyOf(p)) ?? new Map<number, string>();
    if (!targets.has(p.target!)) targets.set(p.target!, p.id);
    calibration.set(familyOf(p), targets);
  }
  return { calibration: [...calibration.values()].map((t) => [...t.values()]), points: pending.map((p) => p.id) };
}

/** A stable name for one sweep config: launch state lives under `<cache>/launch/<name>-<hash>/`. */
export const launchKey = (c: SweepConfig) => `${c.name}-${hashOf(c)}`;

export const resolvedCacheDir = (cacheDir?: string) => resolve(cacheDir ?? defaultCacheDir());

/** The grid points without a finished result in the cache. */
export async function pendingPoints(c: SweepConfig, data: SweepData, cacheDir: string): Promise<PointSpec[]> {
  const pending: PointSpec[] = [];
  for (const p of expandGrid(c)) if (!(await readCachedPoint({ config: c, data, cacheDir }, p))) pending.push(p);
  return pending;
}

/** `saelab sweep-point --calibrate-only`: the calibration stage of one point (cached; no-op for TopK or explicit λ). */
export async function runSweepCalibration(o: { config: SweepConfig; pointId: string; cacheDir?: string; quiet?: boolean; signal?: AbortSignal }): Promise<{ lambda: number; l0: number } | null> {
  const cacheDir = resolvedCacheDir(o.cacheDir);
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const p = expandGrid(o.config).find((x) => x.id === o.pointId);
  if (!p) throw new Error(`no point '${o.pointId}' in this sweep (see --list-points)`);
  const data = await prepareSweepData(o.config, cacheDir, log, o.quiet);
  try {
    const r = await calibratePoint({ config: o.config, data, cacheDir, quiet: o.quiet, signal: o.signal, log }, p);
    return r && { lambda: r.lambda, l0: r.l0 };
  } finally {
    await data.close();
  }
}

/** Splits a flag value such as `--partition=cpu --time "01:00:00"` into words (single/double quotes, backslash). */
export function shellWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === '\\' && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unbalanced ${quote} in '${s}'`);
  if (inWord) out.push(cur);
  return out;
}

/** A word quoted for a POSIX shell. */
export const shQuote = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
