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
 *   with several seeds, two series are "separated" when their per-seed frontier intervals do not overlap.
 */

export interface XY {
  l0: number;
  y: number;
}

export interface SeriesInput {
  name: string;
  /** Every point: (seed, setting) with its L0 and value. */
  points: { seed: number; setting: string; l0: number; y: number }[];
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
  /** Whether each adjacent pair in `ranking` is separated by its seed intervals (null with one seed). */
  separated: (boolean | null)[];
}

export interface FrontierSummary {
  metric: string;
  series: SeriesSummary[];
  sharedRange: [number, number] | null;
  orderings: OrderingAt[];
  seeds: number;
  statements: string[];
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

export function summarizeFrontiers(metric: string, input: SeriesInput[]): FrontierSummary {
  const series = input.filter((s) => s.points.length > 0).map(seriesSummary);
  const seeds = Math.max(1, ...input.map((s) => new Set(s.points.map((p) => p.seed)).size));
  const withFrontier = series.filter((s) => s.frontier.length > 0);
  let sharedRange: [number, number] | null = null;
  if (withFrontier.length > 0) {
    const lo = Math.max(...withFrontier.map((s) => s.frontier[0]!.l0));
    const hi = Math.min(...withFrontier.map((s) => s.maxL0));
    if (hi > lo) sharedRange = [lo, hi];
  }
  const statements: string[] = [];
  const orderings: OrderingAt[] = [];
  if (sharedRange) {
    const [lo, hi] = sharedRange;
    for (const s of series) {
      s.area = areaUnderFrontier(s.frontier, lo, hi, s.maxL0);
      s.meanOverRange = s.area === null ? null : s.area / (Math.log(hi) - Math.log(lo));
    }
    // Per-seed frontiers give the intervals used to judge separation.
    const perSeed = new Map<string, { frontier: XY[]; maxL0: number }[]>();
    for (const s of input) {
      const bySeed = new Map<number, XY[]>();
      for (const p of s.points) bySeed.set(p.seed, [...(bySeed.get(p.seed) ?? []), { l0: p.l0, y: p.y }]);
      perSeed.set(s.name, [...bySeed.values()].map((ps) => ({ frontier: paretoFrontier(ps), maxL0: Math.max(...ps.map((p) => p.l0)) })));
    }
    const at = (frac: number) => Math.exp(Math.log(lo) + frac * (Math.log(hi) - Math.log(lo)));
    for (const [label, frac] of [['low', 1 / 6], ['mid', 1 / 2], ['high', 5 / 6]] as const) {
      const l0 = at(frac);
      const ranking = series
        .map((s) => {
          const y = frontierAt(s.frontier, l0, s.maxL0);
          const seedVals = (perSeed.get(s.name) ?? []).map((f) => frontierAt(f.frontier, l0, f.maxL0)).filter((v): v is number => v !== null);
          return y === null ? null : { name: s.name, y, yMin: seedVals.length ? Math.min(...seedVals) : y, yMax: seedVals.length ? Math.max(...seedVals) : y, n: seedVals.length };
        })
        .filter((r): r is NonNullable<typeof r> => r !== null)
        .sort((a, b) => a.y - b.y);
      const separated = ranking.slice(1).map((r, i) => (seeds < 2 || r.n < 2 || ranking[i]!.n < 2 ? null : ranking[i]!.yMax < r.yMin));
      orderings.push({ label, l0, ranking: ranking.map(({ n: _n, ...r }) => r), separated });
      const chain = ranking.map((r, i) => (i === 0 ? r.name : `${separated[i - 1] === true ? ' < ' : separated[i - 1] === false ? ' ≈ ' : ' < '}${r.name}`)).join('');
      statements.push(`At ${label} L0 (≈${l0.toFixed(l0 < 10 ? 1 : 0)}), ${metric} from best to worst: ${chain} (${ranking.map((r) => `${r.name} ${fmt(r.y)}`).join(', ')}).`);
    }
    if (seeds < 2) statements.push(`One seed per point: these orderings do not show whether the differences exceed seed-to-seed variation; run with more seeds to tell.`);
    else {
      const pairs = orderings.flatMap((o) => o.separated.map((s, i) => ({ o, s, a: o.ranking[i]!.name, b: o.ranking[i + 1]!.name })));
      const unsep = pairs.filter((p) => p.s === false).map((p) => `${p.a} vs ${p.b} at ${p.o.label} L0`);
      statements.push(
        unsep.length === 0
          ? `With ${seeds} seeds, every adjacent pair in these orderings is separated (seed intervals do not overlap).`
          : `With ${seeds} seeds, not separable (overlapping seed intervals): ${unsep.join('; ')}. '≈' marks these above.`,
      );
    }
    const byArea = series.filter((s) => s.meanOverRange !== null).sort((a, b) => a.meanOverRange! - b.meanOverRange!);
    statements.push(
      `Mean ${metric} over the shared L0 range [${lo.toFixed(1)}, ${hi.toFixed(1)}] (area under the frontier / ln-width; lower is better): ${byArea.map((s) => `${s.name} ${fmt(s.meanOverRange!)}`).join(', ')}.`,
    );
  } else {
    statements.push(`The frontiers' L0 ranges do not overlap, so no shared range to compare areas or orderings over.`);
  }
  return { metric, series, sharedRange, orderings, seeds, statements };
}
