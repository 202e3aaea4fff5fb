/**
 * Uncertainty of Pareto frontiers, and the test behind every "A beats B at L0 ≈ x" of the report.
 *
 * Two independent sources of noise make a frontier value uncertain: training (seed: init and data order) and the
 * finite evaluation set. We treat them separately:
 *  - seed level: each seed's frontier is built from that seed's points alone and read at a common L0 x
 *    (linear in ln L0 between its frontier points, flat to its largest L0; `frontierAt`), giving per-seed values
 *    a_1..a_n of architecture A at x;
 *  - evaluation level: a paired bootstrap over evaluation windows (every point is re-evaluated on the same
 *    resampled multiset of windows: per-window sums make that exact), holding seeds fixed, gives the variance
 *    v_eval of the seed-mean difference D = ā − b̄ at x.
 * Test (per pair and L0): Welch's t on the per-seed values with v_eval added to the squared standard error,
 * Welch–Satterthwaite degrees of freedom (stats.ts welchTest); two-sided, Holm-corrected over every comparison
 * the report makes for one metric; "separated" iff the corrected p < α (0.05). Needs ≥ 2 seeds per side; with
 * one seed nothing is tested and the report says so.
 * Intervals drawn on the plot: percentile intervals of the seed-mean frontier from a hierarchical bootstrap —
 * seeds resampled with replacement within each architecture, and evaluation windows resampled. With 3 seeds the
 * seed resample has only 10 distinct outcomes and underestimates the seed variance by (n − 1)/n, so the bands
 * are descriptive; the t-test above, not band overlap, decides "separated".
 */
import { Rng, bootstrapCounts, holmAdjust, quantile, welchTest } from '@saelab/core';
import { type XY, frontierAt, paretoFrontier } from './frontier.js';

/** One point with (optionally) its per-block sums: y = Σ_b num_b / denominator(blocks), L0 = Σ_b l0_b / Σ_b rows_b. */
export interface StatPoint {
  seed: number;
  l0: number;
  y: number;
  blocks?: { l0: number[]; rows: number[]; num: number[] };
}

export interface StatSeries {
  name: string;
  points: StatPoint[];
}

/** The metric's shared denominator under block weights w (e.g. FVU's total variance, ΔLM loss's prediction count). */
export interface BlockResampler {
  blocks: number;
  denominator(w: Float64Array): number;
}

export interface PairTest {
  a: string;
  b: string;
  l0: number;
  /** mean over A's seeds − mean over B's seeds of the per-seed frontier values at l0 (negative: A better). */
  difference: number;
  seSeed: number;
  seEval: number;
  df: number;
  p: number;
  pHolm: number;
  seeds: [number, number];
  separated: boolean;
}

export interface FrontierStats {
  method: string;
  alpha: number;
  replicates: number;
  /** Evaluation blocks resampled (null: no per-block data, only the seed part is tested). */
  blocks: number | null;
  intervals: { series: string; points: { l0: number; mean: number; lo: number; hi: number }[] }[];
  meanOverRange: { series: string; lo: number; hi: number }[];
  tests: PairTest[];
}

export const ALPHA = 0.05;

/** A point re-evaluated under block weights (the full-data values when w is null or it has no blocks). */
function pointAt(p: StatPoint, w: Float64Array | null, den: number | null): XY {
  if (!w || !p.blocks || den === null) return { l0: p.l0, y: p.y };
  let num = 0;
  let l0 = 0;
  let rows = 0;
  for (let b = 0; b < w.length; b++) {
    num += w[b]! * p.blocks.num[b]!;
    l0 += w[b]! * p.blocks.l0[b]!;
    rows += w[b]! * p.blocks.rows[b]!;
  }
  return { l0: l0 / rows, y: num / den };
}

/** Per-seed frontiers of a series (under block weights w). */
function seedFrontiers(s: StatSeries, w: Float64Array | null, den: number | null): Map<number, { frontier: XY[]; maxL0: number }> {
  const bySeed = new Map<number, XY[]>();
  for (const p of s.points) bySeed.set(p.seed, [...(bySeed.get(p.seed) ?? []), pointAt(p, w, den)]);
  return new Map([...bySeed.entries()].map(([seed, ps]) => [seed, { frontier: paretoFrontier(ps), maxL0: Math.max(...ps.map((p) => p.l0)) }]));
}

/** Per-seed frontier values at x, in seed order; seeds whose frontier does not reach x are left out. */
export function perSeedValues(s: StatSeries, x: number, w: Float64Array | null = null, den: number | null = null): Map<number, number> {
  const out = new Map<number, number>();
  for (const [seed, f] of [...seedFrontiers(s, w, den).entries()].sort((a, b) => a[0] - b[0])) {
    const v = frontierAt(f.frontier, x, f.maxL0);
    if (v !== null) out.set(seed, v);
  }
  return out;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const variance = (xs: number[]) => {
  const m = mean(xs);
  return xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1);
};

/** Block weights for `replicates` bootstrap replicates, drawn once so every comparison uses the same resamples. */
function drawWeights(resampler: BlockResampler | null, replicates: number, rng: Rng): { w: Float64Array; den: number }[] {
  if (!resampler) return [];
  return Array.from({ length: replicates }, () => {
    const w = bootstrapCounts(rng, resampler.blocks);
    return { w, den: resampler.denominator(w) };
  });
}

/**
 * Tests each requested pair (A, B, x) as described above; Holm over all of them. Pairs where either side has
 * fewer than 2 seeds covering x are left out of the result (and of the correction).
 */
export function testPairs(
  series: StatSeries[],
  pairs: { a: string; b: string; l0: number }[],
  resampler: BlockResampler | null,
  opts: { replicates?: number; seed?: number } = {},
): PairTest[] {
  const byName = new Map(series.map((s) => [s.name, s]));
  const reps = drawWeights(resampler, opts.replicates ?? 400, new Rng(opts.seed ?? 20_261_204));
  const raw: Omit<PairTest, 'pHolm' | 'separated'>[] = [];
  for (const { a, b, l0 } of pairs) {
    const A = byName.get(a);
    const B = byName.get(b);
    if (!A || !B) continue;
    const va = perSeedValues(A, l0);
    const vb = perSeedValues(B, l0);
    if (va.size < 2 || vb.size < 2) continue;
    // The evaluation part: the seed-mean difference over the same seeds under each resample of the windows.
    let vEval = 0;
    if (reps.length > 1) {
      const ds: number[] = [];
      for (const r of reps) {
        const ra = [...perSeedValues(A, l0, r.w, r.den).entries()].filter(([s]) => va.has(s)).map(([, v]) => v);
        const rb = [...perSeedValues(B, l0, r.w, r.den).entries()].filter(([s]) => vb.has(s)).map(([, v]) => v);
        if (ra.length > 0 && rb.length > 0) ds.push(mean(ra) - mean(rb));
      }
      if (ds.length > 1) vEval = variance(ds);
    }
    const t = welchTest([...va.values()], [...vb.values()], vEval);
    const seSeed = Math.sqrt(Math.max(0, t.se * t.se - vEval));
    raw.push({ a, b, l0, difference: t.difference, seSeed, seEval: Math.sqrt(vEval), df: t.df, p: t.p, seeds: [va.size, vb.size] });
  }
  const adj = holmAdjust(raw.map((r) => r.p));
  return raw.map((r, i) => ({ ...r, pHolm: adj[i]!, separated: adj[i]! < ALPHA }));
}

/**
 * Percentile intervals (2.5%, 97.5%) of each series' seed-mean frontier at `grid` L0s, and of its mean over the
 * shared range [lo, hi], from the hierarchical bootstrap (seeds with replacement, windows with replacement).
 */
export function frontierIntervals(
  series: StatSeries[],
  grid: number[],
  range: [number, number] | null,
  resampler: BlockResampler | null,
  opts: { replicates?: number; seed?: number } = {},
): Pick<FrontierStats, 'intervals' | 'meanOverRange'> {
  const rng = new Rng((opts.seed ?? 20_261_204) + 1);
  const replicates = opts.replicates ?? 400;
  const reps = drawWeights(resampler, replicates, rng);
  const intervals: FrontierStats['intervals'] = [];
  const meanOverRange: FrontierStats['meanOverRange'] = [];
  for (const s of series) {
    const seeds = [...new Set(s.points.map((p) => p.seed))].sort((a, b) => a - b);
    const gridVals: number[][] = grid.map(() => []);
    const areaVals: number[] = [];
    for (let r = 0; r < replicates; r++) {
      const rep = reps[r] ?? null;
      const fronts = seedFrontiers(s, rep?.w ?? null, rep?.den ?? null);
      const drawn = seeds.map(() => seeds[rng.int(seeds.length)]!);
      // clamp: read a frontier at its nearest end outside its reach (the area's range edges, where a resampled
      // seed's L0 can fall a hair short of the full-data range).
      const valueAt = (x: number, clamp = false) => {
        const vs = drawn
          .map((sd) => fronts.get(sd)!)
          .map((f) => (f.frontier.length === 0 ? null : frontierAt(f.frontier, clamp ? Math.min(Math.max(x, f.frontier[0]!.l0), f.maxL0) : x, f.maxL0)))
          .filter((v): v is number => v !== null);
        return vs.length ? mean(vs) : null;
      };
      grid.forEach((x, i) => {
        const v = valueAt(x);
        if (v !== null) gridVals[i]!.push(v);
      });
      if (range) {
        // Mean over [lo, hi] in ln L0 by the trapezoid rule on 33 log-spaced L0s (the seed-mean of piecewise-
        // linear frontiers is piecewise linear with more knots; 33 nodes keep the error far below the noise).
        const xs = Array.from({ length: 33 }, (_, k) => Math.exp(Math.log(range[0]) + (k / 32) * (Math.log(range[1]) - Math.log(range[0]))));
        const ys = xs.map((x) => valueAt(x, true));
        if (ys.every((v) => v !== null)) areaVals.push(ys.reduce<number>((a, v, k) => a + (k === 0 || k === 32 ? 0.5 : 1) * v!, 0) / 32);
      }
    }
    intervals.push({
      series: s.name,
      points: grid
        .map((l0, i) => ({ l0, vals: gridVals[i]! }))
        .filter((g) => g.vals.length >= replicates / 2)
        .map((g) => ({ l0: g.l0, mean: mean(g.vals), lo: quantile(g.vals, 0.025), hi: quantile(g.vals, 0.975) })),
    });
    if (areaVals.length >= replicates / 2) meanOverRange.push({ series: s.name, lo: quantile(areaVals, 0.025), hi: quantile(areaVals, 0.975) });
  }
  return { intervals, meanOverRange };
}

export function methodText(resampler: BlockResampler | null, replicates: number): string {
  const evalPart = resampler
    ? ` plus the variance of the seed-mean difference under a paired bootstrap over the ${resampler.blocks} evaluation blocks (${replicates} replicates, every point re-evaluated on the same resampled windows)`
    : ' (no per-window data: evaluation-set noise is not included)';
  return (
    `"A < B" means: Welch's t-test on the per-seed frontier values at that L0 (each seed's frontier read there, linear in ln L0 between its points), ` +
    `with squared standard error = the seed part${evalPart}; Welch–Satterthwaite df; two-sided, Holm-corrected over every comparison listed for this metric, ` +
    `separated iff p_Holm < ${ALPHA}. "≈": not separated by that test. Bands: 95% percentile intervals of the seed-mean frontier from a hierarchical ` +
    `bootstrap (seeds with replacement within each architecture, evaluation blocks with replacement); descriptive only.`
  );
}
