/**
 * Evaluation metrics, exactly as defined in docs/specs/metrics-and-sweeps.md. Each has a name and a version that are
 * stored beside its value; bump the version whenever a definition changes so old and new numbers never mix.
 *
 * Feed held-out rows (special tokens already removed) in raw, un-normalised activation space. Everything is
 * accumulated in float64; FVU's denominator uses per-dimension Welford/Chan merging, which equals the two-pass
 * Σ (x − mean)² without the cancellation of Σx² − N·mean².
 */
import { type Tensor, assertShape, dims2 } from '../tensor.js';

export interface MetricDefinition {
  readonly name: string;
  readonly version: number;
  readonly definition: string;
}

export const METRIC_DEFINITIONS = {
  l0: { name: 'L0', version: 1, definition: 'mean over rows of the number of non-zero latents (p10/p50/p90 of the per-row count: numpy linear percentiles)' },
  mse: { name: 'MSE', version: 1, definition: 'mean over rows of sum_d (x - x_hat)^2, raw activations' },
  fvu: { name: 'FVU', version: 1, definition: 'sum_rows sum_d (x - x_hat)^2 / sum_rows sum_d (x - mean(x))^2, mean per dimension over the eval set' },
  explainedVariance: { name: 'explained_variance', version: 1, definition: '1 - FVU' },
  shrinkage: { name: 'shrinkage', version: 1, definition: 'E||x_hat||^2 / E[x . x_hat] (1 = no shrinkage)' },
  deadFraction: { name: 'dead_fraction', version: 1, definition: 'fraction of latents that never fired (non-zero) on the evaluation set' },
  denseFraction: { name: 'dense_fraction', version: 1, definition: 'fraction of latents non-zero on more than 10% of rows' },
  deltaLmLoss: { name: 'delta_lm_loss', version: 1, definition: 'CE(LM with x replaced by x_hat) - CE(clean LM), nats per token, same tokens' },
  ceRecovered: { name: 'ce_recovered', version: 1, definition: '(CE_zero - CE_sae) / (CE_zero - CE_clean); CE_zero replaces the activation by zeros' },
  mmcs: { name: 'MMCS', version: 1, definition: 'mean over true features of the max cosine similarity with any decoder row' },
} as const satisfies Record<string, MetricDefinition>;

/** A metric value as stored: null where the metric is undefined on this data (stated, never NaN). */
export interface MetricRecord {
  name: string;
  version: number;
  value: number | null;
}

export interface MetricsSummary {
  rows: number;
  l0: { mean: number; p10: number; p50: number; p90: number };
  mse: number;
  /** null when the evaluation rows have zero variance (the denominator is 0). */
  fvu: number | null;
  explainedVariance: number | null;
  /** null when E[x·x̂] = 0 (e.g. x̂ ≡ 0). */
  shrinkage: number | null;
  deadFraction: number;
  denseFraction: number;
  /** Per-latent number of rows on which the latent was non-zero. */
  firingCounts: Float64Array;
  /** The scalar metrics with names and versions, ready to store. */
  records: MetricRecord[];
}

/** Rows on which a latent must fire, as a fraction, to count as dense (spec: more than 10% of tokens). */
export const DENSE_FIRING_FRACTION = 0.1;

/** Streaming accumulator: `add` batches of (x [B,d], x̂ [B,d], latents [B,m]), then `summary()`. */
export class MetricsAccumulator {
  readonly dIn: number;
  readonly dSae: number;
  private n = 0;
  private sse = 0;
  private sumXhatSq = 0;
  private sumXDotXhat = 0;
  private readonly mean: Float64Array; // running per-dimension mean of x
  private readonly m2: Float64Array; // running per-dimension Σ (x − mean)²
  private readonly bMean: Float64Array; // scratch for the current batch
  private readonly bM2: Float64Array;
  private readonly firing: Float64Array;
  private readonly l0Hist: Float64Array; // l0Hist[c] = rows with exactly c non-zero latents

  constructor(dIn: number, dSae: number) {
    if (!Number.isInteger(dIn) || dIn <= 0) throw new Error(`MetricsAccumulator: dIn must be a positive integer, got ${dIn}`);
    if (!Number.isInteger(dSae) || dSae <= 0) throw new Error(`MetricsAccumulator: dSae must be a positive integer, got ${dSae}`);
    this.dIn = dIn;
    this.dSae = dSae;
    this.mean = new Float64Array(dIn);
    this.m2 = new Float64Array(dIn);
    this.bMean = new Float64Array(dIn);
    this.bM2 = new Float64Array(dIn);
    this.firing = new Float64Array(dSae);
    this.l0Hist = new Float64Array(dSae + 1);
  }

  get rows(): number {
    return this.n;
  }

  add(x: Tensor, xHat: Tensor, latents: Tensor): void {
    const [b] = dims2(x, 'metrics: x');
    assertShape(x, [b, this.dIn], 'metrics: x');
    assertShape(xHat, [b, this.dIn], 'metrics: xHat');
    assertShape(latents, [b, this.dSae], 'metrics: latents');
    if (b === 0) return;
    this.addReconstruction(b, x.data, xHat.data);
    this.addVariance(b, x.data);
    this.addLatents(b, latents.data);
    this.n += b;
  }

  private addReconstruction(b: number, x: Float32Array, xh: Float32Array): void {
    let sse = 0;
    let hh = 0;
    let xh_ = 0;
    for (let i = 0; i < b * this.dIn; i++) {
      const xi = x[i]!;
      const hi = xh[i]!;
      const e = xi - hi;
      sse += e * e;
      hh += hi * hi;
      xh_ += xi * hi;
    }
    if (!Number.isFinite(sse + hh + xh_)) throw new Error('metrics: x or xHat contains non-finite values');
    this.sse += sse;
    this.sumXhatSq += hh;
    this.sumXDotXhat += xh_;
  }

  /** Two-pass mean/M2 within the batch, merged into the running totals (Chan, Golub & LeVeque 1979). */
  private addVariance(b: number, x: Float32Array): void {
    const d = this.dIn;
    const bm = this.bMean;
    const bm2 = this.bM2;
    bm.fill(0);
    bm2.fill(0);
    for (let r = 0; r < b; r++) for (let j = 0; j < d; j++) bm[j] += x[r * d + j]!;
    for (let j = 0; j < d; j++) bm[j] /= b;
    for (let r = 0; r < b; r++) {
      for (let j = 0; j < d; j++) {
        const c = x[r * d + j]! - bm[j]!;
        bm2[j] += c * c;
      }
    }
    const na = this.n;
    const nt = na + b;
    for (let j = 0; j < d; j++) {
      const delta = bm[j]! - this.mean[j]!;
      this.m2[j] += bm2[j]! + (delta * delta * na * b) / nt;
      this.mean[j] += (delta * b) / nt;
    }
  }

  private addLatents(b: number, f: Float32Array): void {
    const m = this.dSae;
    for (let r = 0; r < b; r++) {
      let c = 0;
      const o = r * m;
      for (let i = 0; i < m; i++) {
        const v = f[o + i]!;
        if (v !== 0) {
          if (!Number.isFinite(v)) throw new Error(`metrics: latents contain a non-finite value at row ${this.n + r}, latent ${i}`);
          c++;
          this.firing[i] += 1;
        }
      }
      this.l0Hist[c] += 1;
    }
  }

  summary(): MetricsSummary {
    const n = this.n;
    if (n === 0) throw new Error('metrics: no rows were added');
    const m = this.dSae;
    let l0Sum = 0;
    for (let c = 0; c <= m; c++) l0Sum += c * this.l0Hist[c]!;
    let totalVar = 0;
    for (let j = 0; j < this.dIn; j++) totalVar += this.m2[j]!;
    let dead = 0;
    let dense = 0;
    for (let i = 0; i < m; i++) {
      if (this.firing[i] === 0) dead++;
      if (this.firing[i]! > DENSE_FIRING_FRACTION * n) dense++;
    }
    const fvu = totalVar > 0 ? this.sse / totalVar : null;
    const s: Omit<MetricsSummary, 'records'> = {
      rows: n,
      l0: {
        mean: l0Sum / n,
        p10: histPercentile(this.l0Hist, n, 0.1),
        p50: histPercentile(this.l0Hist, n, 0.5),
        p90: histPercentile(this.l0Hist, n, 0.9),
      },
      mse: this.sse / n,
      fvu,
      explainedVariance: fvu === null ? null : 1 - fvu,
      shrinkage: this.sumXDotXhat !== 0 ? this.sumXhatSq / this.sumXDotXhat : null,
      deadFraction: dead / m,
      denseFraction: dense / m,
      firingCounts: this.firing.slice(),
    };
    const D = METRIC_DEFINITIONS;
    const rec = (def: MetricDefinition, value: number | null): MetricRecord => ({ name: def.name, version: def.version, value });
    const records = [
      rec(D.l0, s.l0.mean),
      rec({ ...D.l0, name: 'L0_p10' }, s.l0.p10),
      rec({ ...D.l0, name: 'L0_p50' }, s.l0.p50),
      rec({ ...D.l0, name: 'L0_p90' }, s.l0.p90),
      rec(D.mse, s.mse),
      rec(D.fvu, s.fvu),
      rec(D.explainedVariance, s.explainedVariance),
      rec(D.shrinkage, s.shrinkage),
      rec(D.deadFraction, s.deadFraction),
      rec(D.denseFraction, s.denseFraction),
    ];
    return { ...s, records };
  }
}

/**
 * The p-quantile of the values described by a histogram (hist[v] = how many values equal v), with numpy's
 * default linear interpolation: position h = (n−1)p between the sorted values at ⌊h⌋ and ⌈h⌉.
 */
function histPercentile(hist: Float64Array, n: number, p: number): number {
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  const a = kthSmallest(hist, lo);
  const b = kthSmallest(hist, Math.min(n - 1, lo + 1));
  return a + (h - lo) * (b - a);
}

/** The value of 0-based rank k in the sorted multiset described by the histogram. */
function kthSmallest(hist: Float64Array, k: number): number {
  let seen = 0;
  for (let v = 0; v < hist.length; v++) {
    seen += hist[v]!;
    if (seen > k) return v;
  }
  throw new Error(`kthSmallest: rank ${k} beyond ${seen} values`);
}

/**
 * For each true feature (row of trueDict [n, d]) the largest cosine similarity with any decoder row
 * (decoder [m, d]). Zero decoder rows have similarity 0; a zero true feature is an error.
 */
export function maxCosineSimilarities(trueDict: Tensor, decoder: Tensor): Float64Array {
  const [n, d] = dims2(trueDict, 'MMCS: trueDict');
  const [m] = dims2(decoder, 'MMCS: decoder');
  assertShape(decoder, [m, d], 'MMCS: decoder');
  if (m === 0) throw new Error('MMCS: decoder has no rows');
  const u = unitRows(trueDict.data, n, d, 'trueDict', true);
  const w = unitRows(decoder.data, m, d, 'decoder', false);
  const best = new Float64Array(n);
  for (let a = 0; a < n; a++) {
    let mx = -Infinity;
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += u[a * d + j]! * w[i * d + j]!;
      if (s > mx) mx = s;
    }
    best[a] = mx;
  }
  return best;
}

function unitRows(x: Float32Array, rows: number, d: number, name: string, forbidZero: boolean): Float64Array {
  const out = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[r * d + j]! * x[r * d + j]!;
    const norm = Math.sqrt(s);
    if (!Number.isFinite(norm)) throw new Error(`MMCS: ${name} row ${r} contains non-finite values`);
    if (norm === 0) {
      if (forbidZero) throw new Error(`MMCS: ${name} row ${r} is zero, its cosine similarity is undefined`);
      continue;
    }
    for (let j = 0; j < d; j++) out[r * d + j] = x[r * d + j]! / norm;
  }
  return out;
}

/** MMCS (GT recovery on synthetic data): mean over true features of the best cosine with any decoder row. */
export function meanMaxCosineSimilarity(trueDict: Tensor, decoder: Tensor): number {
  const best = maxCosineSimilarities(trueDict, decoder);
  if (best.length === 0) throw new Error('MMCS: trueDict has no rows');
  let s = 0;
  for (const v of best) s += v;
  return s / best.length;
}

function checkCe(fn: string, values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) {
    if (!Number.isFinite(v)) throw new Error(`${fn}: ${k} must be finite, got ${v}`);
  }
}

/** ΔLM loss = CE_sae − CE_clean (nats per token, same tokens). */
export function deltaLmLoss(ceClean: number, ceSae: number): number {
  checkCe('deltaLmLoss', { ceClean, ceSae });
  return ceSae - ceClean;
}

/** CE recovered = (CE_zero − CE_sae) / (CE_zero − CE_clean); 1 = as good as clean, 0 = as bad as zero-ablation. */
export function ceRecovered(ceClean: number, ceSae: number, ceZero: number): number {
  checkCe('ceRecovered', { ceClean, ceSae, ceZero });
  if (ceZero === ceClean) throw new Error('ceRecovered: CE_zero equals CE_clean, so zero-ablation costs nothing and the ratio is undefined');
  return (ceZero - ceSae) / (ceZero - ceClean);
}
