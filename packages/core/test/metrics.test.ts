import { describe, expect, it } from 'vitest';
import {
  METRIC_DEFINITIONS,
  MetricsAccumulator,
  ceRecovered,
  deltaLmLoss,
  maxCosineSimilarities,
  meanMaxCosineSimilarity,
} from '../src/sae/metrics.js';
import { Rng } from '../src/rng.js';
import { type Tensor, zeros } from '../src/tensor.js';

const N = 257;
const D = 9;
const M = 20;

/** Synthetic eval set: x with offset, a noisy shrunken x̂, sparse latents with dead (0, 1) and dense (2, 3) latents. */
function evalSet(seed: number, offset = 3) {
  const rng = new Rng(seed);
  const x = zeros([N, D]);
  const xHat = zeros([N, D]);
  const f = zeros([N, M]);
  for (let i = 0; i < N * D; i++) {
    x.data[i] = offset + rng.normal() * (1 + (i % D));
    xHat.data[i] = 0.8 * x.data[i]! + 0.3 * rng.normal();
  }
  for (let r = 0; r < N; r++) {
    for (let i = 2; i < M; i++) {
      const p = i < 4 ? 0.6 : 0.04 + 0.01 * (i % 7);
      if (rng.uniform() < p) f.data[r * M + i] = rng.uniform() + 0.01;
    }
  }
  return { x, xHat, f };
}

const rows = (t: Tensor, a: number, b: number): Tensor => {
  const w = t.shape[1]!;
  return { data: t.data.subarray(a * w, b * w), shape: [b - a, w] };
};

function feed(acc: MetricsAccumulator, s: ReturnType<typeof evalSet>, sizes: number[]) {
  let r = 0;
  for (const b of sizes) {
    acc.add(rows(s.x, r, r + b), rows(s.xHat, r, r + b), rows(s.f, r, r + b));
    r += b;
  }
  expect(r).toBe(N);
}

/** numpy.percentile(values, 100p) with the default linear interpolation. */
function percentile(values: number[], p: number): number {
  const v = [...values].sort((a, b) => a - b);
  const h = (v.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(v.length - 1, lo + 1);
  return v[lo]! + (h - lo) * (v[hi]! - v[lo]!);
}

/** Float64 reference written directly from docs/specs/metrics-and-sweeps.md, two-pass FVU. */
function reference(x: Tensor, xHat: Tensor, f: Tensor) {
  const n = x.shape[0]!;
  const d = x.shape[1]!;
  const m = f.shape[1]!;
  const mean = new Array(d).fill(0);
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) mean[j] += x.data[r * d + j]! / n;
  let sse = 0;
  let tot = 0;
  let hh = 0;
  let xh = 0;
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < d; j++) {
      const a = x.data[r * d + j]!;
      const b = xHat.data[r * d + j]!;
      sse += (a - b) ** 2;
      tot += (a - mean[j]) ** 2;
      hh += b * b;
      xh += a * b;
    }
  }
  const counts: number[] = [];
  const firing = new Array(m).fill(0);
  for (let r = 0; r < n; r++) {
    let c = 0;
    for (let i = 0; i < m; i++) {
      if (f.data[r * m + i] !== 0) {
        c++;
        firing[i]++;
      }
    }
    counts.push(c);
  }
  return {
    l0: counts.reduce((a, b) => a + b, 0) / n,
    p10: percentile(counts, 0.1),
    p50: percentile(counts, 0.5),
    p90: percentile(counts, 0.9),
    mse: sse / n,
    fvu: sse / tot,
    shrinkage: (hh / n) / (xh / n),
    dead: firing.filter((c) => c === 0).length / m,
    dense: firing.filter((c) => c > 0.1 * n).length / m,
    firing,
  };
}

describe('MetricsAccumulator', () => {
  it('matches the float64 reference for every metric, fed in uneven batches', () => {
    const s = evalSet(1);
    const acc = new MetricsAccumulator(D, M);
    feed(acc, s, [1, 100, 3, 64, 89]);
    const got = acc.summary();
    const ref = reference(s.x, s.xHat, s.f);
    expect(got.rows).toBe(N);
    expect(got.l0.mean).toBeCloseTo(ref.l0, 12);
    expect(got.l0.p10).toBeCloseTo(ref.p10, 12);
    expect(got.l0.p50).toBeCloseTo(ref.p50, 12);
    expect(got.l0.p90).toBeCloseTo(ref.p90, 12);
    expect(got.mse).toBeCloseTo(ref.mse, 9);
    expect(got.fvu!).toBeCloseTo(ref.fvu, 12);
    expect(got.explainedVariance!).toBeCloseTo(1 - ref.fvu, 12);
    expect(got.shrinkage!).toBeCloseTo(ref.shrinkage, 12);
    expect(got.deadFraction).toBe(ref.dead);
    expect(got.denseFraction).toBe(ref.dense);
    expect(Array.from(got.firingCounts)).toEqual(ref.firing);
    // the synthetic set exercises both: latents 0, 1 dead; 2, 3 dense
    expect(ref.dead).toBe(2 / M);
    expect(ref.dense).toBe(2 / M);
    expect(got.l0.p10).toBeLessThan(got.l0.p90);
  });

  it('percentiles interpolate between order statistics like numpy', () => {
    const acc = new MetricsAccumulator(1, 4);
    const counts = [0, 4, 1, 1];
    const f = zeros([4, 4]);
    counts.forEach((c, r) => f.data.fill(1, r * 4, r * 4 + c));
    acc.add({ data: Float32Array.from([1, 2, 3, 4]), shape: [4, 1] }, zeros([4, 1]), f);
    const s = acc.summary();
    expect(s.l0.p10).toBeCloseTo(percentile(counts, 0.1), 12); // 0.3
    expect(s.l0.p90).toBeCloseTo(percentile(counts, 0.9), 12); // 3.1
    expect(s.l0.p50).toBe(1);
  });

  it('predicting the per-dimension mean gives FVU 1; a perfect reconstruction gives FVU 0 and no shrinkage', () => {
    const s = evalSet(2);
    const mean = new Float64Array(D);
    for (let r = 0; r < N; r++) for (let j = 0; j < D; j++) mean[j] += s.x.data[r * D + j]! / N;
    const xMean = zeros([N, D]);
    for (let r = 0; r < N; r++) for (let j = 0; j < D; j++) xMean.data[r * D + j] = mean[j]!;
    const a = new MetricsAccumulator(D, M);
    a.add(s.x, xMean, s.f);
    expect(a.summary().fvu!).toBeCloseTo(1, 6);
    expect(a.summary().explainedVariance!).toBeCloseTo(0, 6);
    const b = new MetricsAccumulator(D, M);
    b.add(s.x, s.x, s.f);
    expect(b.summary().fvu).toBe(0);
    expect(b.summary().mse).toBe(0);
    expect(b.summary().shrinkage).toBe(1);
  });

  it('shrinkage of x̂ = γx is γ', () => {
    const s = evalSet(3);
    for (let i = 0; i < N * D; i++) s.xHat.data[i] = 0.5 * s.x.data[i]!;
    const a = new MetricsAccumulator(D, M);
    a.add(s.x, s.xHat, s.f);
    expect(a.summary().shrinkage).toBeCloseTo(0.5, 12);
  });

  it('FVU is stable for activations with a large common offset (no Σx² − N·mean² cancellation)', () => {
    const s = evalSet(4, 2e5);
    const acc = new MetricsAccumulator(D, M);
    feed(acc, s, [128, 129]);
    const ref = reference(s.x, s.xHat, s.f);
    expect(Math.abs(acc.summary().fvu! / ref.fvu - 1)).toBeLessThan(1e-9);
  });

  it('stores each metric with its definition name and version; undefined metrics are null, not NaN', () => {
    const s = evalSet(5);
    const acc = new MetricsAccumulator(D, M);
    acc.add(s.x, s.xHat, s.f);
    const rec = acc.summary().records;
    const fvu = rec.find((r) => r.name === METRIC_DEFINITIONS.fvu.name)!;
    expect(fvu.version).toBe(METRIC_DEFINITIONS.fvu.version);
    expect(fvu.value).toBe(acc.summary().fvu);
    for (const r of rec) expect(Number.isFinite(r.value)).toBe(true);

    const constant = new MetricsAccumulator(2, 3);
    constant.add({ data: Float32Array.from([1, 2, 1, 2]), shape: [2, 2] }, zeros([2, 2]), zeros([2, 3]));
    const c = constant.summary();
    expect(c.fvu).toBeNull();
    expect(c.explainedVariance).toBeNull();
    expect(c.shrinkage).toBeNull();
    expect(c.deadFraction).toBe(1);
  });

  it('rejects mismatched shapes, non-finite values and empty summaries', () => {
    const acc = new MetricsAccumulator(D, M);
    expect(() => acc.summary()).toThrow(/no rows/);
    expect(() => acc.add(zeros([2, D]), zeros([3, D]), zeros([2, M]))).toThrow(/xHat/);
    expect(() => acc.add(zeros([2, D]), zeros([2, D]), zeros([2, M + 1]))).toThrow(/latents/);
    const bad = zeros([2, D]);
    bad.data[3] = Number.NaN;
    expect(() => acc.add(bad, zeros([2, D]), zeros([2, M]))).toThrow(/non-finite/);
  });
});

describe('MMCS and CE metrics', () => {
  function randDict(rng: Rng, n: number, d: number): Tensor {
    const t = zeros([n, d]);
    for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal();
    return t;
  }

  it('matches a float64 reference on random dictionaries', () => {
    const rng = new Rng(6);
    const T = randDict(rng, 7, 5);
    const W = randDict(rng, 11, 5);
    const norm = (t: Tensor, r: number) => Math.sqrt(Array.from(t.data.subarray(r * 5, r * 5 + 5)).reduce((s, v) => s + v * v, 0));
    const ref: number[] = [];
    for (let a = 0; a < 7; a++) {
      let best = -Infinity;
      for (let i = 0; i < 11; i++) {
        let s = 0;
        for (let j = 0; j < 5; j++) s += T.data[a * 5 + j]! * W.data[i * 5 + j]!;
        best = Math.max(best, s / (norm(T, a) * norm(W, i)));
      }
      ref.push(best);
    }
    Array.from(maxCosineSimilarities(T, W)).forEach((v, a) => expect(v).toBeCloseTo(ref[a]!, 6));
    expect(meanMaxCosineSimilarity(T, W)).toBeCloseTo(ref.reduce((s, v) => s + v, 0) / 7, 6);
  });

  it('is 1 when the decoder contains every true feature (scaled, permuted, among extra rows)', () => {
    const rng = new Rng(7);
    const T = randDict(rng, 6, 8);
    const W = randDict(rng, 10, 8);
    const perm = [9, 2, 5, 0, 7, 3];
    perm.forEach((i, a) => {
      for (let j = 0; j < 8; j++) W.data[i * 8 + j] = (a + 0.5) * T.data[a * 8 + j]!;
    });
    expect(meanMaxCosineSimilarity(T, W)).toBeCloseTo(1, 6);
    expect(() => meanMaxCosineSimilarity(zeros([2, 8]), W)).toThrow(/zero/);
    expect(() => meanMaxCosineSimilarity(T, zeros([3, 7]))).toThrow(/decoder/);
  });

  it('CE recovered and ΔLM loss follow their definitions', () => {
    expect(ceRecovered(2, 2, 5)).toBe(1);
    expect(ceRecovered(2, 5, 5)).toBe(0);
    expect(ceRecovered(2.5, 3.1, 6.2)).toBeCloseTo((6.2 - 3.1) / (6.2 - 2.5), 15);
    expect(() => ceRecovered(2, 3, 2)).toThrow(/CE_zero equals CE_clean/);
    expect(() => ceRecovered(Number.NaN, 3, 2)).toThrow(/ceClean/);
    expect(deltaLmLoss(2.5, 2.75)).toBeCloseTo(0.25, 15);
  });
});
