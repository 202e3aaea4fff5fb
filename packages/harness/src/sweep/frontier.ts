/**
 * Pareto frontiers of fidelity vs L0 (docs/specs/metrics-and-sweeps.md), their summary number, and plain-language orderings.
 *
 * - A series is one architecture (per expansion when several are swept). Its points are the seed means of each
 *   sparsity setting; the band is the min–max over seeds.
 * - The frontier is the non-dominated points (lower L0 and lower fidelity-loss both better): sorted by L0, a point
 *   stays if its value is below every point with smaller L0.
 * - Area under a frontier: ∫ y d(ln L0) over the L0 range shared by all series (piecewise-linear in ln L0), also
 *   given as its mean (area / width) which reads in the metric's units.
 * - Orderings at low / mid / high L0 (1/6, 1/2, 5/6 of the shared log range): each series' frontier value there;
 *   with several seeds, two adjacent series are "separated" when the test of frontier-stats.ts (Welch on per-seed
 *   frontier values plus the paired bootstrap over evaluation windows, Holm-corrected) says so.
 */
import { type BlockResampler, type FrontierStats, type PairTest, frontierIntervals, methodText, testPairs } from './frontier-stats.js';

export interface XY {
  l0: number;
  y: number;
}

export interface SeriesInput {
  name: string;
  /** Every point: (seed, setting) with its L0 and value, and optionally its per-block sums (frontier-stats.ts). */
  points: { seed: number; setting: string; l0: number; y: number; blocks?: { l0: number[]; rows: number[]; num: number[] } }[];
}

export interface SeriesSummary {
  name: string;
  /** Seed means per setting, sorted by L0, with the seed min/max of y and L0. */
  means: (XY & { setting: string; yMin: number; yMax: number; l0Min: number; l0Max: number; seeds: number })[];
  frontier: XY[];
  /** Largest L0 of the series (the frontier extends flat to it). */
  maxL0: number;
  area: number | null;
  meanOverRange: number | null;
}

export interface OrderingAt {
  label: 'low' | 'mid' | 'high';
  l0: number;
  /** Best (lowest) first. */
  ranking: { name: string; y: number; yMin: number; yMax: number }[];
  /** Whether each adjacent pair in `ranking` is separated by the stated test (null: not testable, e.g. one seed). */
  separated: (boolean | null)[];
  /** The test behind each entry of `separated` (null where not testable). */
  tests: (PairTest | null)[];
}

export interface FrontierSummary {
  metric: string;
  series: SeriesSummary[];
  sharedRange: [number, number] | null;
  orderings: OrderingAt[];
  seeds: number;
  statements: string[];
  /** Intervals and tests (frontier-stats.ts). */
  stats: FrontierStats | null;
}

/** Non-dominated points, sorted by L0 (ties in L0 keep the lower y). */
export function paretoFrontier(points: XY[]): XY[] {
  const sorted = points.filter((p) => Number.isFinite(p.l0) && Number.isFinite(p.y)).sort((a, b) => a.l0 - b.l0 || a.y - b.y);
  const out: XY[] = [];
  let best = Infinity;
  for (const p of sorted) {
    if (p.y < best) {
      out.push({ l0: p.l0, y: p.y });
      best = p.y;
    }
  }
  return out;
}

/**
 * The frontier's value at `l0`: linear in ln L0 between frontier points, flat from the last frontier point up to
 * `extendTo` (the series' largest L0: a denser SAE that is no better leaves the best sparser one on the frontier),
 * null outside that range.
 */
export function frontierAt(frontier: XY[], l0: number, extendTo = -Infinity): number | null {
  if (frontier.length === 0) return null;
  const last = frontier[frontier.length - 1]!;
  if (l0 < frontier[0]!.l0 || l0 > Math.max(last.l0, extendTo)) return null;
  if (l0 >= last.l0) return last.y;
  for (let i = 0; i < frontier.length - 1; i++) {
    const a = frontier[i]!;
    const b = frontier[i + 1]!;
    if (l0 <= b.l0) {
      if (b.l0 === a.l0) return Math.min(a.y, b.y);
      const t = (Math.log(l0) - Math.log(a.l0)) / (Math.log(b.l0) - Math.log(a.l0));
      return a.y + t * (b.y - a.y);
    }
  }
  return frontier[frontier.length - 1]!.y;
}

/** ∫_{ln lo}^{ln hi} y d(ln L0) of the frontier as `frontierAt` defines it (exact: y is piecewise linear in ln L0). */
export function areaUnderFrontier(frontier: XY[], lo: number, hi: number, extendTo = -Infinity): number | null {
  if (!(hi >= lo) || frontierAt(frontier, lo, extendTo) === null || frontierAt(frontier, hi, extendTo) === null) return null;
  const xs = [lo, ...frontier.map((p) => p.l0).filter((x) => x > lo && x < hi), hi];
  let area = 0;
  for (let i = 0; i < xs.length - 1; i++) {
    const [a, b] = [xs[i]!, xs[i + 1]!];
    area += ((frontierAt(frontier, a, extendTo)! + frontierAt(frontier, b, extendTo)!) / 2) * (Math.log(b) - Math.log(a));
  }
  return area;
}

function seriesSummary(s: SeriesInput): SeriesSummary {
  const bySetting = new Map<string, SeriesInput['points']>();
  for (const p of s.points) bySetting.set(p.setting, [...(bySetting.get(p.setting) ?? []), p]);
  const means = [...bySetting.entries()]
    .map(([setting, ps]) => {
      const mean = (f: (p: (typeof ps)[number]) => number) => ps.reduce((a, p) => a + f(p), 0) / ps.length;
      return {
        setting,
        l0: mean((p) => p.l0),
        y: mean((p) => p.y),
        yMin: Math.min(...ps.map((p) => p.y)),
        yMax: Math.max(...ps.map((p) => p.y)),
        l0Min: Math.min(...ps.map((p) => p.l0)),
        l0Max: Math.max(...ps.map((p) => p.l0)),
        seeds: ps.length,
      };
    })
    .sort((a, b) => a.l0 - b.l0);
  return { name: s.name, means, frontier: paretoFrontier(means), maxL0: Math.max(...means.map((m) => m.l0)), area: null, meanOverRange: null };
}

const fmt = (v: number) => (Math.abs(v) >= 100 || Math.abs(v) < 0.01 ? v.toExponential(2) : v.toPrecision(3));

export interface SummarizeOptions {
  /** Per-block denominators for the bootstrap over evaluation windows (null: seed-level test only). */
  resampler?: BlockResampler | null;
  replicates?: number;
}

export function summarizeFrontiers(metric: string, input: SeriesInput[], opts: SummarizeOptions = {}): FrontierSummary {
  const series = input.filter((s) => s.points.length > 0).map(seriesSummary);
  const seeds = Math.max(1, ...input.map((s) => new Set(s.points.map((p) => p.seed)).size));
  const withFrontier = series.filter((s) => s.frontier.length > 0);
  const resampler = opts.resampler ?? null;
  const replicates = opts.replicates ?? 400;
  let sharedRange: [number, number] | null = null;
  if (withFrontier.length > 0) {
    const lo = Math.max(...withFrontier.map((s) => s.frontier[0]!.l0));
    const hi = Math.min(...withFrontier.map((s) => s.maxL0));
    if (hi > lo) sharedRange = [lo, hi];
  }
  const statements: string[] = [];
  const orderings: OrderingAt[] = [];
  const statSeries = input.filter((s) => s.points.length > 0);
  // Interval grid: 12 log-spaced L0s over each series' own range (intervals outside a series' reach are dropped).
  const allL0 = series.flatMap((s) => s.means.map((m) => m.l0)).filter((v) => v > 0);
  const grid = allL0.length ? Array.from({ length: 12 }, (_, i) => Math.exp(Math.log(Math.min(...allL0)) + (i / 11) * (Math.log(Math.max(...allL0)) - Math.log(Math.min(...allL0))))) : [];
  const stats: FrontierStats = { method: methodText(resampler, replicates), alpha: 0.05, replicates, blocks: resampler?.blocks ?? null, ...frontierIntervals(statSeries, grid, sharedRange, resampler, { replicates }), tests: [] };
  if (sharedRange) {
    const [lo, hi] = sharedRange;
    for (const s of series) {
      s.area = areaUnderFrontier(s.frontier, lo, hi, s.maxL0);
      s.meanOverRange = s.area === null ? null : s.area / (Math.log(hi) - Math.log(lo));
    }
    const at = (frac: number) => Math.exp(Math.log(lo) + frac * (Math.log(hi) - Math.log(lo)));
    const levels = (
      [
        ['low', 1 / 6],
        ['mid', 1 / 2],
        ['high', 5 / 6],
      ] as const
    ).map(([label, frac]) => {
      const l0 = at(frac);
      const ranking = series
        .map((s) => {
          const y = frontierAt(s.frontier, l0, s.maxL0);
          const seedVals = [...perSeedAt(input.find((x) => x.name === s.name)!, l0).values()];
          return y === null ? null : { name: s.name, y, yMin: seedVals.length ? Math.min(...seedVals) : y, yMax: seedVals.length ? Math.max(...seedVals) : y };
        })
        .filter((r): r is NonNullable<typeof r> => r !== null)
        .sort((a, b) => a.y - b.y);
      return { label, l0, ranking };
    });
    // One family of tests per metric: every adjacent pair at every level, Holm-corrected together.
    const wanted = levels.flatMap((lv) => lv.ranking.slice(1).map((r, i) => ({ a: lv.ranking[i]!.name, b: r.name, l0: lv.l0 })));
    const tests = seeds >= 2 ? testPairs(statSeries, wanted, resampler, { replicates }) : [];
    stats.tests = tests;
    for (const lv of levels) {
      const pairTests = lv.ranking.slice(1).map((r, i) => tests.find((t) => t.a === lv.ranking[i]!.name && t.b === r.name && t.l0 === lv.l0) ?? null);
      const separated = pairTests.map((t) => (t === null ? null : t.separated));
      orderings.push({ label: lv.label, l0: lv.l0, ranking: lv.ranking, separated, tests: pairTests });
      const tested = separated.some((x) => x !== null);
      const chain = tested
        ? lv.ranking.map((r, i) => (i === 0 ? r.name : `${separated[i - 1] === true ? ' < ' : separated[i - 1] === false ? ' ≈ ' : ' ? '}${r.name}`)).join('')
        : lv.ranking.map((r) => r.name).join(', ');
      statements.push(
        `At ${lv.label} L0 (≈${lv.l0.toFixed(lv.l0 < 10 ? 1 : 0)}), ${metric} ${tested ? 'from best to worst' : 'by point estimate, best first (untested)'}: ${chain} (${lv.ranking.map((r) => `${r.name} ${fmt(r.y)}`).join(', ')}).`,
      );
    }
    if (seeds < 2) statements.push(`One seed per point: these orderings do not show whether the differences exceed seed-to-seed variation; run with more seeds to tell.`);
    else {
      const pairs = orderings.flatMap((o) => o.separated.map((s, i) => ({ o, s, a: o.ranking[i]!.name, b: o.ranking[i + 1]!.name })));
      const unsep = pairs.filter((p) => p.s === false).map((p) => `${p.a} vs ${p.b} at ${p.o.label} L0`);
      const untested = pairs.filter((p) => p.s === null).map((p) => `${p.a} vs ${p.b} at ${p.o.label} L0`);
      statements.push(
        (unsep.length === 0
          ? `With ${seeds} seeds, every adjacent pair in these orderings is separated by the test below.`
          : `With ${seeds} seeds, not separable by the test below: ${unsep.join('; ')}. '≈' marks these above.`) +
          (untested.length ? ` Not testable (fewer than 2 seeds reach that L0): ${untested.join('; ')} ('?').` : ''),
      );
      statements.push(`Test: Welch's t on per-seed frontier values at that L0 plus the paired bootstrap variance over evaluation windows, Holm-corrected over the ${stats.tests.length} comparisons of this metric, α = ${stats.alpha} (details and every p-value: 'Statistical tests behind the findings').`);
    }
    const byArea = series.filter((s) => s.meanOverRange !== null).sort((a, b) => a.meanOverRange! - b.meanOverRange!);
    const ci = (name: string) => {
      const m = stats.meanOverRange.find((x) => x.series === name);
      return m ? ` [${fmt(m.lo)}, ${fmt(m.hi)}]` : '';
    };
    statements.push(
      `Mean ${metric} over the shared L0 range [${lo.toFixed(1)}, ${hi.toFixed(1)}] (area under the frontier / ln-width; lower is better; 95% bootstrap interval): ${byArea.map((s) => `${s.name} ${fmt(s.meanOverRange!)}${ci(s.name)}`).join(', ')}.`,
    );
  } else {
    statements.push(`The frontiers' L0 ranges do not overlap, so no shared range to compare areas or orderings over.`);
  }
  return { metric, series, sharedRange, orderings, seeds, statements, stats };
}

/** Per-seed frontier values of one series at x (full data). */
function perSeedAt(s: SeriesInput, x: number): Map<number, number> {
  const bySeed = new Map<number, XY[]>();
  for (const p of s.points) bySeed.set(p.seed, [...(bySeed.get(p.seed) ?? []), { l0: p.l0, y: p.y }]);
  const out = new Map<number, number>();
  for (const [seed, ps] of bySeed) {
    const v = frontierAt(paretoFrontier(ps), x, Math.max(...ps.map((p) => p.l0)));
    if (v !== null) out.set(seed, v);
  }
  return out;
}
