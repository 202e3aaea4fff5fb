/**
 * `saelab sweep`: prepare the data (cached), run every grid point (cached; optionally fanned out to `--jobs`
 * child processes running `saelab sweep-point`), then summarise the frontiers and write the run folder:
 * sweep-config.json, frontier.json, frontier.svg/.png, report.md/.html and the SAEs as SAELens folders.
 */
import { spawn } from 'node:child_process';
import { cp, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type GemmEngine, defaultEngine, writeFileAtomic } from '@saelab/core';
import { type PointSpec, type SweepConfig, expandGrid } from './config.js';
import { type SweepData, prepareSweepData } from './dataset.js';
import { type SweepBaselines, sweepBaselines } from './baselines.js';
import { blockMoments, evalBlocks, resampledTotalVariance } from './eval-blocks.js';
import { type FrontierSummary, type SeriesInput, summarizeFrontiers } from './frontier.js';
import type { BlockResampler } from './frontier-stats.js';
import { type PlotPanel, frontierSpec, renderPng, renderSvg } from './plot.js';
import { baselineData } from './plot-baselines.js';
import { densityRows, densitySpec } from './plot-density.js';
import { type PointResult, machineInfo, pointDir, readCachedPoint, runPoint } from './point.js';
import { renderHtml, renderMarkdown } from './report.js';
import { sweepInterpretability } from '../interp/sweep-interp.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
export const defaultCacheDir = () => process.env.SAELAB_CACHE_DIR ?? join(REPO_ROOT, '.cache', 'saelab');
const BIN = join(REPO_ROOT, 'packages/harness/bin/saelab.js');

export interface SweepRunOptions {
  config: SweepConfig;
  cacheDir?: string;
  /** Run folder (default runs/sweep-<name>-<timestamp>/ at the repository root). */
  out?: string;
  /** Child processes running points in parallel (1 = in this process). */
  jobs?: number;
  quiet?: boolean;
  signal?: AbortSignal;
  /** The command line, for the report. */
  command?: string;
  engine?: GemmEngine;
  log?: (s: string) => void;
  /** Build the LM and harvest the data (cached), write sweep-config.json, and stop: the set-up for fan-out. */
  prepareOnly?: boolean;
}

export interface SweepRunResult {
  runDir: string;
  points: PointResult[];
  summaries: FrontierSummary[];
  computed: number;
  cached: number;
  wallSeconds: number;
}

const stamp = () => new Date().toISOString().replace(/[:]/g, '-').replace(/\..*$/, '');

export async function runSweep(o: SweepRunOptions): Promise<SweepRunResult> {
  const t0 = performance.now();
  const c = o.config;
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const cacheDir = resolve(o.cacheDir ?? defaultCacheDir());
  const runDir = resolve(o.out ?? join(REPO_ROOT, 'runs', `sweep-${c.name}-${stamp()}`));
  await mkdir(runDir, { recursive: true });
  const configPath = join(runDir, 'sweep-config.json');
  await writeFileAtomic(configPath, JSON.stringify(c, null, 2) + '\n');

  const data = await prepareSweepData(c, cacheDir, log, o.quiet);
  try {
    if (o.prepareOnly) {
      log(`data ready (${data.description}); config in ${configPath}`);
      return { runDir, points: [], summaries: [], computed: 0, cached: 0, wallSeconds: (performance.now() - t0) / 1000 };
    }
    const grid = expandGrid(c);
    log(`sweep '${c.name}': ${grid.length} points (${c.grid.architectures.join(', ')}) on ${data.description}`);
    const engine = o.engine ?? (await defaultEngine());
    const results: PointResult[] = [];
    let computed = 0;
    let cached = 0;
    const pending: PointSpec[] = [];
    for (const p of grid) if (!(await readCachedPoint({ config: c, data, cacheDir }, p))) pending.push(p);
    const fanned = new Set<string>();
    if ((o.jobs ?? 1) > 1 && pending.length > 1) {
      await fanOut(pending, o.jobs!, configPath, cacheDir, log);
      for (const p of pending) fanned.add(p.id);
    }

    const started = performance.now();
    for (const [i, p] of grid.entries()) {
      if (!o.quiet) overallLine(i, grid.length, computed, (performance.now() - started) / 1000, grid.length - i, p.id);
      const r = await runPoint({ config: c, data, cacheDir, engine, quiet: o.quiet, signal: o.signal, log }, p);
      results.push(r.result);
      if (r.cached && !fanned.has(p.id)) cached++;
      else computed++;
    }
    if (!o.quiet) overallLine(grid.length, grid.length, computed, (performance.now() - started) / 1000, 0, 'done');

    const baselines = await sweepBaselines(data, cacheDir, c.data.batch, log);
    const summaries = await summarise(results, data);
    const wallSeconds = (performance.now() - t0) / 1000;
    await writeOutputs(runDir, c, data, results, summaries, cacheDir, { command: o.command ?? 'saelab sweep', wallSeconds, computed, cached, baselines });
    await sweepInterpretability({ runDir, config: c, data, points: results, cacheDir, engine, log });
    log(`${computed} points trained, ${cached} from the cache; wall time ${wallSeconds.toFixed(1)} s`);
    return { runDir, points: results, summaries, computed, cached, wallSeconds };
  } finally {
    await data.close();
  }
}

/**
 * One line of overall progress, printed before each point so that point's own training bar follows underneath
 * (two live bars on one stream would fight over the cursor in a terminal and garble a log file).
 */
function overallLine(done: number, total: number, trained: number, seconds: number, remaining: number, next: string): void {
  const width = 30;
  const filled = Math.round((width * done) / Math.max(1, total));
  const perPoint = trained > 0 ? seconds / trained : null;
  const eta = perPoint === null ? '?' : `≤${Math.round(perPoint * remaining)}s`;
  process.stderr.write(`sweep ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${done}/${total} points | ${seconds.toFixed(0)}s elapsed | ETA ${eta} | ${next}\n`);
}

/** Runs points as `saelab sweep-point` child processes, `jobs` at a time; results land in the shared cache. */
async function fanOut(points: PointSpec[], jobs: number, configPath: string, cacheDir: string, log: (s: string) => void): Promise<void> {
  log(`fanning ${points.length} points out to ${jobs} processes`);
  const queue = [...points];
  const worker = async () => {
    for (let p = queue.shift(); p; p = queue.shift()) {
      const code = await new Promise<number>((res) => {
        const child = spawn(process.execPath, [BIN, 'sweep-point', '--config', configPath, '--point', p!.id, '--cache-dir', cacheDir, '--quiet'], { stdio: ['ignore', 'ignore', 'inherit'] });
        child.on('exit', (c) => res(c ?? 1));
      });
      if (code !== 0) throw new Error(`sweep-point ${p.id} exited with code ${code}`);
      log(`  ${p.id} done`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, points.length) }, worker));
}

/** `saelab sweep-point`: one point alone, into the shared cache (for fan-out). */
export async function runSweepPoint(o: { config: SweepConfig; pointId: string; cacheDir?: string; quiet?: boolean; signal?: AbortSignal }): Promise<{ dir: string; result: PointResult; cached: boolean }> {
  const cacheDir = resolve(o.cacheDir ?? defaultCacheDir());
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const grid = expandGrid(o.config);
  const p = grid.find((x) => x.id === o.pointId);
  if (!p) throw new Error(`no point '${o.pointId}' in this sweep (have ${grid.map((x) => x.id).join(', ')})`);
  const data = await prepareSweepData(o.config, cacheDir, log, o.quiet);
  try {
    const r = await runPoint({ config: o.config, data, cacheDir, quiet: o.quiet, signal: o.signal, log }, p);
    return { dir: pointDir({ config: o.config, data, cacheDir }, p), ...r };
  } finally {
    await data.close();
  }
}

const seriesName = (p: PointResult, multiExpansion: boolean) => (multiExpansion ? `${p.arch} ×${p.expansion}` : p.arch);
const settingOf = (p: PointResult) => (p.target !== null ? `l0_${p.target}` : `${p.sparsity.knob}_${p.sparsity.value}`);

export function seriesInputs(
  points: PointResult[],
  y: (p: PointResult) => number | null | undefined,
  blockNum?: (p: PointResult) => number[] | undefined,
): SeriesInput[] {
  const multi = new Set(points.map((p) => p.expansion)).size > 1;
  const m = new Map<string, SeriesInput>();
  for (const p of points) {
    const v = y(p);
    if (v === null || v === undefined || !Number.isFinite(v)) continue;
    const name = seriesName(p, multi);
    if (!m.has(name)) m.set(name, { name, points: [] });
    const num = blockNum?.(p);
    const b = p.field?.blocks;
    m.get(name)!.points.push({ seed: p.seed, setting: settingOf(p), l0: p.metrics.l0.mean, y: v, ...(num && b ? { blocks: { l0: b.l0, rows: b.rows, num } } : {}) });
  }
  return [...m.values()];
}

/**
 * Frontier summaries with their statistics: the bootstrap over evaluation blocks runs only when every point
 * carries per-block sums on the same blocks as this dataset (points cached before the field metrics existed
 * do not; then only the seed-level test runs, and the report says so).
 */
async function summarise(points: PointResult[], data: SweepData): Promise<FrontierSummary[]> {
  const blocks = evalBlocks(data);
  const sameBlocks = points.length > 0 && points.every((p) => p.field?.blocks.rows.length === blocks.rows.length);
  const out: FrontierSummary[] = [];
  if (data.lm) {
    const preds = points[0]?.field?.blocks.predictions;
    const lmBlocks = sameBlocks && preds && points.every((p) => p.field?.blocks.dCe);
    const resampler: BlockResampler | null = lmBlocks ? { blocks: blocks.rows.length, denominator: (w) => preds!.reduce((a, c, i) => a + w[i]! * c, 0) } : null;
    out.push(summarizeFrontiers('ΔLM loss', seriesInputs(points, (p) => p.lm?.deltaLoss, lmBlocks ? (p) => p.field!.blocks.dCe : undefined), { resampler }));
  }
  const moments = sameBlocks ? await blockMoments(data, blocks) : null;
  const fvuResampler: BlockResampler | null = moments ? { blocks: blocks.rows.length, denominator: (w) => resampledTotalVariance(moments, w) } : null;
  out.push(summarizeFrontiers('FVU', seriesInputs(points, (p) => p.metrics.fvu, moments ? (p) => p.field!.blocks.sse : undefined), { resampler: fvuResampler }));
  return out;
}

async function writeOutputs(
  runDir: string,
  c: SweepConfig,
  data: SweepData,
  points: PointResult[],
  summaries: FrontierSummary[],
  cacheDir: string,
  meta: { command: string; wallSeconds: number; computed: number; cached: number; baselines: SweepBaselines },
): Promise<void> {
  const createdAt = new Date().toISOString();
  const lmBase = points.find((p) => p.lm)?.lm ?? null;
  const provenance = {
    config: c,
    seeds: c.grid.seeds,
    dataFingerprint: data.fingerprint,
    data: data.description,
    site: data.site,
    ...data.provenance,
    codeVersions: Object.fromEntries([...new Set(points.map((p) => p.arch))].map((a) => [a, points.find((p) => p.arch === a)!.provenance.codeVersion])),
    machine: machineInfo(),
    cacheDir,
    command: meta.command,
    createdAt,
    wallSeconds: meta.wallSeconds,
    pointsTrained: meta.computed,
    pointsCached: meta.cached,
  };
  await writeFileAtomic(join(runDir, 'frontier.json'), JSON.stringify({ format: 'saelab-frontier', version: 1, provenance, summaries, baselines: meta.baselines, points }, null, 2) + '\n');

  const multi = new Set(points.map((p) => p.expansion)).size > 1;
  const order = [...new Set(points.map((p) => seriesName(p, multi)))];
  const l0s = points.map((p) => p.metrics.l0.mean).filter((v) => v > 0);
  const l0Range: [number, number] = l0s.length ? [Math.min(...l0s), Math.max(...l0s)] : [1, 1];
  const panel = (s: FrontierSummary, title: string, yTitle: string, y: (p: PointResult) => number | null | undefined): PlotPanel => ({
    summary: s,
    title,
    yTitle,
    points: points.filter((p) => Number.isFinite(y(p) ?? NaN)).map((p) => ({ series: seriesName(p, multi), l0: p.metrics.l0.mean, y: y(p)!, seed: p.seed, id: p.id })),
    baselines: baselineData(meta.baselines, s.metric === 'FVU' ? 'FVU' : 'ΔLM loss', l0Range),
  });
  const panels = summaries.map((s) =>
    s.metric === 'FVU'
      ? panel(s, 'FVU vs L0 (lower is better)', 'fraction of variance unexplained', (p) => p.metrics.fvu)
      : panel(s, 'ΔLM loss vs L0 (lower is better)', 'ΔLM loss (nats/token)', (p) => p.lm?.deltaLoss),
  );
  const svg = await renderSvg(frontierSpec(panels, order));
  await writeFileAtomic(join(runDir, 'frontier.svg'), svg);
  await writeFileAtomic(join(runDir, 'frontier.png'), renderPng(svg));
  const density = densityRows(points);
  let dsvg: string | undefined;
  if (density.rows.length > 0) {
    dsvg = await renderSvg(densitySpec(density.rows));
    await writeFileAtomic(join(runDir, 'density.svg'), dsvg);
    await writeFileAtomic(join(runDir, 'density.png'), renderPng(dsvg));
  }

  const report = {
    title: `SAE Pareto frontiers: ${c.name}`,
    command: meta.command,
    createdAt,
    // Paths under the cache are this machine's: the report names them relative to it.
    data: data.description.split(cacheDir).join('<cache>'),
    lm: lmBase ? { ceClean: lmBase.ceClean, ceZero: lmBase.ceZero } : null,
    summaries,
    points,
    baselines: meta.baselines,
    density: density.dead,
    densitySvg: dsvg,
    provenance: { dataFingerprint: data.fingerprint, site: data.site, codeVersions: provenance.codeVersions, machine: provenance.machine, seeds: c.grid.seeds, config: c },
    wallSeconds: meta.wallSeconds,
  };
  await writeFileAtomic(join(runDir, 'report.md'), renderMarkdown(report));
  await writeFileAtomic(join(runDir, 'report.html'), renderHtml(report, svg));

  // The trained SAEs, as SAELens folders named by point id.
  for (const p of points) {
    const src = join(cacheDir, 'points', `${p.id}-${p.hash}`, 'sae');
    await cp(src, join(runDir, 'saes', p.id), { recursive: true, force: true });
  }
}
