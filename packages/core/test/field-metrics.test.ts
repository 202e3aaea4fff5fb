import { describe, expect, it } from 'vitest';
import { SaeBenchExplainedVariance, klDivScore, klDivergenceRows, latentDensityHistogram } from '../src/sae/field-metrics.js';
import { Rng } from '../src/rng.js';
import { type Tensor, zeros } from '../src/tensor.js';

function randomTensor(rng: Rng, rows: number, cols: number, scale = 1, offset = 0): Tensor {
  const t = zeros([rows, cols]);
  for (let i = 0; i < t.data.length; i++) t.data[i] = offset + scale * rng.normal();
  return t;
}

describe('SAEBench per-token explained variance', () => {
  it('equals the per-token formula with the per-batch mean, computed independently in float64', () => {
    const rng = new Rng(1);
    const d = 7;
    const batches = [randomTensor(rng, 40, d, 2, 5), randomTensor(rng, 13, d, 1, -3)];
    const recon = batches.map((x) => {
      const y = zeros(x.shape as [number, number]);
      for (let i = 0; i < x.data.length; i++) y.data[i] = 0.7 * x.data[i]! + 0.4 * rng.normal();
      return y;
    });
    const ev = new SaeBenchExplainedVariance();
    batches.forEach((x, i) => ev.addBatch(x, recon[i]!));
    // Reference: per token 1 − rss/tss with the batch mean, then a plain mean over all 53 tokens.
    const perToken: number[] = [];
    batches.forEach((x, bi) => {
      const n = x.shape[0]!;
      const rowsOf = (t: Tensor) => Array.from({ length: n }, (_, r) => Array.from(t.data.subarray(r * d, (r + 1) * d), Number));
      const xs = rowsOf(x);
      const ys = rowsOf(recon[bi]!);
      const mu = Array.from({ length: d }, (_, j) => xs.reduce((a, r) => a + r[j]!, 0) / n);
      xs.forEach((r, ri) => {
        const rss = r.reduce((a, v, j) => a + (v - ys[ri]![j]!) ** 2, 0);
        const tss = r.reduce((a, v, j) => a + (v - mu[j]!) ** 2, 0);
        perToken.push(1 - rss / tss);
      });
    });
    const want = perToken.reduce((a, b) => a + b, 0) / perToken.length;
    expect(ev.count).toBe(53);
    expect(ev.value()).toBeCloseTo(want, 10);
  });

  it('is 1 for a perfect reconstruction and 0 when x̂ is the batch mean', () => {
    const rng = new Rng(2);
    const x = randomTensor(rng, 20, 4, 1, 2);
    const perfect = new SaeBenchExplainedVariance();
    perfect.addBatch(x, x);
    expect(perfect.value()).toBe(1);
    const mean = zeros([20, 4]);
    for (let j = 0; j < 4; j++) {
      let s = 0;
      for (let r = 0; r < 20; r++) s += x.data[r * 4 + j]!;
      for (let r = 0; r < 20; r++) mean.data[r * 4 + j] = s / 20;
    }
    const atMean = new SaeBenchExplainedVariance();
    atMean.addBatch(x, mean);
    expect(atMean.value()!).toBeCloseTo(0, 5);
  });
});

describe('KL divergence', () => {
  it('matches KL(p‖q) of explicitly normalised distributions', () => {
    const rng = new Rng(3);
    const a = randomTensor(rng, 5, 11, 3);
    const b = randomTensor(rng, 5, 11, 3);
    const kl = klDivergenceRows(a, b);
    for (let r = 0; r < 5; r++) {
      const softmax = (t: Tensor) => {
        const e = Array.from(t.data.subarray(r * 11, (r + 1) * 11), (v) => Math.exp(Number(v)));
        const z = e.reduce((s, v) => s + v, 0);
        return e.map((v) => v / z);
      };
      const p = softmax(a);
      const q = softmax(b);
      const want = p.reduce((s, pv, v) => s + pv * Math.log(pv / q[v]!), 0);
      expect(kl[r]).toBeCloseTo(want, 9);
    }
    expect(Array.from(klDivergenceRows(a, a))).toEqual([0, 0, 0, 0, 0]);
  });

  it('KL score is 1 for no divergence, 0 at the ablation level, null when ablation changes nothing', () => {
    expect(klDivScore(0, 2)).toBe(1);
    expect(klDivScore(2, 2)).toBe(0);
    expect(klDivScore(0.5, 2)).toBeCloseTo(0.75, 15);
    expect(klDivScore(0, 0)).toBeNull();
  });
});

describe('latent density histogram', () => {
  it('bins log10 firing frequencies and counts dead latents apart', () => {
    // 1000 rows: frequencies 1 (log 0), 0.1 (−1), 0.05 (−1.30), 0.001 (−3), 0 (dead) ×2.
    const h = latentDensityHistogram([1000, 100, 50, 1, 0, 0], 1000, 0.5);
    expect(h.dead).toBe(2);
    expect(h.edges[0]).toBe(-3);
    expect(h.edges[h.edges.length - 1]).toBe(0);
    const binOf = (lf: number) => h.edges.findIndex((e, i) => i < h.counts.length && lf >= e - 1e-12 && (lf < h.edges[i + 1]! - 1e-12 || i === h.counts.length - 1));
    const want = new Array(h.counts.length).fill(0);
    for (const lf of [0, -1, Math.log10(0.05), -3]) want[binOf(lf)]++;
    expect(h.counts).toEqual(want);
    expect(h.counts.reduce((a, b) => a + b, 0) + h.dead).toBe(6);
  });

  it('rejects counts above the number of rows', () => {
    expect(() => latentDensityHistogram([5], 4)).toThrow(/fired 5 times on 4 rows/);
  });
});
