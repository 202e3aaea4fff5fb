/**
 * k-sparse probing on synthetic data: a latent that IS the label is found and probes perfectly; latents independent
 * of the label probe at chance. The logistic regression is checked against its optimality condition.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '@saelab/core';
import { type FeatureMatrix, type LabelledExamples, balancedSample, fitLogistic, predictLogistic, probeTask, rankByMeanDifference } from '../src/interp/index.js';

/** n examples of `classes` classes, features [n, m] of noise; split 70/30 by example. */
function synthetic(n: number, m: number, classes: number, seed: number): { f: FeatureMatrix; ex: LabelledExamples } {
  const rng = new Rng(seed);
  const label = Int32Array.from({ length: n }, () => rng.int(classes));
  const split = Uint8Array.from({ length: n }, () => (rng.uniform() < 0.7 ? 0 : 1));
  const data = new Float32Array(n * m);
  for (let i = 0; i < n * m; i++) data[i] = rng.uniform() < 0.1 ? rng.uniform() * 3 : 0; // sparse, non-negative like latents
  return { f: { rows: n, cols: m, data }, ex: { label, split, classes: Array.from({ length: classes }, (_, c) => `c${c}`) } };
}

describe('logistic regression (Newton, L2, C)', () => {
  it('reaches the optimum: the gradient w + C Σ (p − y) x vanishes (float64, computed here independently)', () => {
    const rng = new Rng(3);
    const n = 300;
    const k = 4;
    const x = Float64Array.from({ length: n * k }, () => rng.normal());
    const y = Array.from({ length: n }, (_, i) => (x[i * k]! + 0.5 * x[i * k + 1]! + 0.8 * rng.normal() > 0 ? 1 : 0));
    const C = 0.7;
    const m = fitLogistic(x, y, n, k, { C });
    const g = new Float64Array(k + 1);
    for (let j = 0; j < k; j++) g[j] = m.w[j]!;
    for (let i = 0; i < n; i++) {
      let z = m.b;
      for (let j = 0; j < k; j++) z += m.w[j]! * x[i * k + j]!;
      const r = C * (1 / (1 + Math.exp(-z)) - y[i]!);
      for (let j = 0; j < k; j++) g[j]! += r * x[i * k + j]!;
      g[k]! += r;
    }
    for (const v of g) expect(Math.abs(v)).toBeLessThan(1e-6);
    expect(m.w[0]!).toBeGreaterThan(m.w[1]!);
    expect(m.w[1]!).toBeGreaterThan(0);
  });

  it('separates separable data with finite weights', () => {
    const x = [0, 0.1, 0.2, 1, 1.1, 1.2];
    const y = [0, 0, 0, 1, 1, 1];
    const m = fitLogistic(x, y, 6, 1);
    expect(Number.isFinite(m.w[0]!)).toBe(true);
    expect(Array.from(predictLogistic(m, x, 6))).toEqual(y);
  });

  it('rejects mismatched shapes with a clear message', () => {
    expect(() => fitLogistic([1, 2, 3], [0, 1], 2, 2)).toThrow(/x has 3 values, expected n·k = 4/);
  });
});

describe('sparse probing', () => {
  it('balances each one-vs-rest task: as many negatives as positives, drawn from every other class', () => {
    const { ex } = synthetic(3000, 4, 4, 1);
    const s = balancedSample(ex, 2, 0, new Rng(0), 10_000);
    const pos = s.index.filter((_, i) => s.y[i] === 1);
    const neg = s.index.filter((_, i) => s.y[i] === 0);
    expect(pos.length).toBe(neg.length);
    expect(pos.every((i) => ex.label[i] === 2 && ex.split[i] === 0)).toBe(true);
    expect(neg.every((i) => ex.label[i] !== 2 && ex.split[i] === 0)).toBe(true);
    for (const c of [0, 1, 3]) expect(neg.filter((i) => ex.label[i] === c).length).toBeGreaterThan(pos.length / 3 - 2);
  });

  it('one latent IS the label: it ranks first by mean difference, probes at accuracy 1 and has F1 1', () => {
    // Small enough to stay well inside vitest's worker RPC timeout on a loaded machine (the probes are synchronous).
    const { f, ex } = synthetic(2000, 32, 3, 2);
    // Latent 17 = 1 exactly when the class is 1 (a "feature for the concept").
    for (let i = 0; i < f.rows; i++) f.data[i * 32 + 17] = ex.label[i] === 1 ? 1 + (i % 7) / 7 : 0;
    const r = probeTask(f, ex, { ks: [1, 2, 5, 20] });
    const c1 = r.classes.find((c) => c.class === 'c1')!;
    for (const k of ['1', '2', '5', '20']) expect(c1.accuracy[k]).toBe(1);
    expect(c1.bestFeature.index).toBe(17);
    expect(c1.bestFeature.f1).toBe(1);
    const s = balancedSample(ex, 1, 0, new Rng(0), 10_000);
    expect(rankByMeanDifference(f, s.index, s.y).order[0]).toBe(17);
    // Classes 0 and 2 see latent 17 = 0 versus a mix: it still helps but cannot separate them.
    expect(r.classes.find((c) => c.class === 'c0')!.accuracy['1']).toBeLessThan(0.9);
  });

  it('no latent carries the label: held-out accuracy is at chance (0.5 ± 0.05) for every k', () => {
    const { f, ex } = synthetic(5000, 32, 2, 4);
    const r = probeTask(f, ex, { ks: [1, 2, 5, 20], all: true });
    for (const k of ['1', '2', '5', '20']) expect(Math.abs(r.meanAccuracy[k]! - 0.5)).toBeLessThan(0.05);
    expect(Math.abs(r.meanAccuracyAll! - 0.5)).toBeLessThan(0.05);
  });

  it('skips classes with too few examples and says so when none is left', () => {
    const { f, ex } = synthetic(40, 4, 2, 5);
    expect(() => probeTask(f, ex, { minPositives: 100 })).toThrow(/no class has enough examples/);
  });
});
