import { describe, expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import { bootstrapCounts, holmAdjust, incompleteBeta, lnGamma, quantile, studentTCritical, studentTTwoSidedP, welchTest } from '../src/stats.js';

describe('distribution functions', () => {
  it('ln Γ matches factorials and Γ(1/2) = √π', () => {
    expect(lnGamma(1)).toBeCloseTo(0, 13);
    expect(lnGamma(6)).toBeCloseTo(Math.log(120), 12);
    expect(lnGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 12);
  });

  it('I_x(a, 1) = x^a and I_x(1, b) = 1 − (1 − x)^b', () => {
    expect(incompleteBeta(2.5, 1, 0.3)).toBeCloseTo(0.3 ** 2.5, 12);
    expect(incompleteBeta(1, 3.5, 0.6)).toBeCloseTo(1 - 0.4 ** 3.5, 12);
  });

  it('Student t: table critical values (two-sided 5%, 1%) and the closed forms at df 1 and 2', () => {
    // Classic t-table values.
    expect(studentTTwoSidedP(12.706, 1)).toBeCloseTo(0.05, 4);
    expect(studentTTwoSidedP(4.303, 2)).toBeCloseTo(0.05, 4);
    expect(studentTTwoSidedP(2.776, 4)).toBeCloseTo(0.05, 4);
    expect(studentTTwoSidedP(2.228, 10)).toBeCloseTo(0.05, 4);
    expect(studentTTwoSidedP(3.169, 10)).toBeCloseTo(0.01, 4);
    // df 1 is Cauchy: P(|T| ≥ t) = 1 − 2 atan(t)/π; df 2: 1 − t/√(t² + 2).
    for (const t of [0.3, 1, 2.5, 7]) {
      expect(studentTTwoSidedP(t, 1)).toBeCloseTo(1 - (2 * Math.atan(t)) / Math.PI, 12);
      expect(studentTTwoSidedP(t, 2)).toBeCloseTo(1 - t / Math.sqrt(t * t + 2), 12);
    }
    expect(studentTTwoSidedP(1.959964, Infinity)).toBeCloseTo(0.05, 6);
    expect(studentTCritical(0.05, 4)).toBeCloseTo(2.7764, 3);
    expect(studentTCritical(0.05, 30)).toBeCloseTo(2.0423, 3);
  });
});

describe('Welch test', () => {
  it('matches a hand computation', () => {
    const a = [1, 2, 3];
    const b = [4, 6, 8, 10];
    // means 2 and 7; variances 1 and 6.667; se² = 1/3 + 6.667/4 = 2.0; df = 4 / ((1/3)²/2 + (1.6667)²/3).
    const r = welchTest(a, b);
    expect(r.difference).toBe(-5);
    expect(r.se).toBeCloseTo(Math.sqrt(1 / 3 + 20 / 3 / 4), 12);
    const va = 1 / 3;
    const vb = 20 / 3 / 4;
    expect(r.df).toBeCloseTo((va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3), 12);
    expect(r.p).toBeCloseTo(studentTTwoSidedP(-5 / r.se, r.df), 14);
  });

  it('has its nominal false-positive rate with 3 seeds per side and an extra evaluation-noise term', () => {
    // Known answer: under the null, P(p < 0.05) = 0.05. 4000 simulated comparisons, 3 seeds each, seed sd 1,
    // plus an independent evaluation-sampling error of the difference with known variance 0.25.
    const rng = new Rng(7);
    let rejections = 0;
    const trials = 4000;
    for (let i = 0; i < trials; i++) {
      const e = 0.5 * rng.normal();
      const a = [rng.normal() + e, rng.normal() + e, rng.normal() + e];
      const b = [rng.normal(), rng.normal(), rng.normal()];
      if (welchTest(a, b, 0.25).p < 0.05) rejections++;
    }
    const rate = rejections / trials;
    // Welch is slightly conservative at n = 3; the rate must be near 5% and certainly not above ~6.5%.
    expect(rate).toBeGreaterThan(0.02);
    expect(rate).toBeLessThan(0.065);
  });

  it('detects a large true difference with 3 seeds', () => {
    const rng = new Rng(8);
    let hits = 0;
    for (let i = 0; i < 500; i++) {
      const a = [0, 0, 0].map(() => rng.normal() * 0.1);
      const b = [0, 0, 0].map(() => 1 + rng.normal() * 0.1);
      if (welchTest(a, b).p < 0.05) hits++;
    }
    expect(hits).toBeGreaterThan(490);
  });
});

describe('Holm correction and the bootstrap helpers', () => {
  it('Holm: the textbook example', () => {
    // p = 0.01, 0.04, 0.03, 0.005 (m = 4): sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 → max 0.06.
    const adj = holmAdjust([0.01, 0.04, 0.03, 0.005]);
    expect(adj[3]).toBeCloseTo(0.02, 15);
    expect(adj[0]).toBeCloseTo(0.03, 15);
    expect(adj[2]).toBeCloseTo(0.06, 15);
    expect(adj[1]).toBeCloseTo(0.06, 15);
  });

  it('bootstrap counts sum to n and the bootstrap SE of a mean is σ/√n', () => {
    const rng = new Rng(3);
    const n = 50;
    const xs = Array.from({ length: n }, () => rng.normal() * 2);
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / n); // plug-in σ of the bootstrap world
    const means: number[] = [];
    for (let r = 0; r < 4000; r++) {
      const w = bootstrapCounts(rng, n);
      expect(w.reduce((a, b) => a + b, 0)).toBe(n);
      means.push(xs.reduce((a, x, i) => a + w[i]! * x, 0) / n);
    }
    const m = means.reduce((a, b) => a + b, 0) / means.length;
    const se = Math.sqrt(means.reduce((a, b) => a + (b - m) ** 2, 0) / (means.length - 1));
    expect(se / (sd / Math.sqrt(n))).toBeGreaterThan(0.93);
    expect(se / (sd / Math.sqrt(n))).toBeLessThan(1.07);
  });

  it('quantile interpolates like numpy', () => {
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5], 0.1)).toBeCloseTo(1.4, 15);
  });
});
