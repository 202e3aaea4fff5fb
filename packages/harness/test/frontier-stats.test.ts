/**
 * The statistics behind "A beats B at L0 ≈ x", on synthetic sweeps whose truth is known: the false-positive rate
 * under no difference, the power under a large one, and the evaluation-noise variance against its closed form.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '@saelab/core';
import { type StatSeries, frontierIntervals, perSeedValues, testPairs } from '../src/sweep/frontier-stats.js';

const NB = 40;
const ROWS = 100;
const L0S = [4, 8, 16, 32];

/**
 * A synthetic sweep of two architectures. Point value y = truth(L0) + offset + seed effect (sd seedSd, shared
 * by the seed's points) + eval noise: per block a common effect (same windows for every SAE, cancels in pairs)
 * and a point-specific one (sd blockSd per row-averaged block).
 */
function sweep(rng: Rng, offsetB: number, seedSd: number, blockSd: number, seeds = 3) {
  const common = Array.from({ length: NB }, () => 0.05 * rng.normal());
  const mk = (name: string, offset: number): StatSeries => ({
    name,
    points: Array.from({ length: seeds }, (_, seed) => {
      const se = seedSd * rng.normal();
      return L0S.map((l0) => {
        const perBlock = common.map((c) => 1 / l0 + offset + se + c + blockSd * rng.normal());
        const y = perBlock.reduce((a, b) => a + b, 0) / NB;
        return { seed, l0, y, blocks: { l0: perBlock.map(() => l0 * ROWS), rows: perBlock.map(() => ROWS), num: perBlock.map((v) => v * ROWS) } };
      });
    }).flat(),
  });
  const out = [mk('A', 0), mk('B', offsetB)];
  return Object.assign(out, { commonMean: common.reduce((a, b) => a + b, 0) / NB });
}
const resampler = { blocks: NB, denominator: (w: Float64Array) => w.reduce((a, b) => a + b, 0) * ROWS };

describe('frontier tests', () => {
  it('per-seed values read each seed’s frontier at x, linear in ln L0', () => {
    const [a] = sweep(new Rng(1), 0, 0, 0);
    const x = Math.sqrt(8 * 16);
    const v = perSeedValues(a!, x);
    expect(v.size).toBe(3);
    for (const [seed, val] of v) {
      const at = (l0: number) => a!.points.find((p) => p.seed === seed && p.l0 === l0)!.y;
      expect(val).toBeCloseTo((at(8) + at(16)) / 2, 12); // midpoint in ln L0
    }
  });

  it('false-positive rate ≤ 5% (+ Monte Carlo slack) when the architectures do not differ', () => {
    const rng = new Rng(11);
    let separated = 0;
    const sims = 300;
    for (let i = 0; i < sims; i++) {
      const t = testPairs(sweep(rng, 0, 0.01, 0.02), [{ a: 'A', b: 'B', l0: 11 }], resampler, { replicates: 150, seed: i });
      if (t[0]!.separated) separated++;
    }
    expect(separated / sims).toBeLessThan(0.085);
  });

  it('separates a difference of ten standard errors, and the evaluation part matches its closed form', () => {
    const rng = new Rng(12);
    // No seed effect beyond a tiny one: the evaluation noise dominates. Var(D) from point-specific block noise
    // = 2 · blockSd² / (seeds · NB) (seed means of block means, two independent sides).
    const blockSd = 0.05;
    const ratios: number[] = [];
    for (let i = 0; i < 40; i++) {
      const [a, b] = sweep(rng, 0.1, 1e-4, blockSd);
      const [t] = testPairs([a!, b!], [{ a: 'A', b: 'B', l0: 8 }], resampler, { replicates: 300, seed: i });
      expect(t!.separated).toBe(true);
      expect(t!.difference).toBeLessThan(0);
      ratios.push(t!.seEval ** 2 / ((2 * blockSd ** 2) / (3 * NB)));
    }
    const meanRatio = ratios.reduce((x, y) => x + y, 0) / ratios.length;
    expect(meanRatio).toBeGreaterThan(0.85);
    expect(meanRatio).toBeLessThan(1.15);
  });

  it('with one seed nothing is tested; with 2+ seeds Holm corrects over the family', () => {
    const one = sweep(new Rng(3), 0.5, 0.01, 0.01, 1);
    expect(testPairs(one, [{ a: 'A', b: 'B', l0: 8 }], resampler)).toEqual([]);
    const two = sweep(new Rng(4), 0.5, 0.01, 0.01, 3);
    const t = testPairs(two, [8, 16].map((l0) => ({ a: 'A', b: 'B', l0 })), resampler, { replicates: 50 });
    expect(t).toHaveLength(2);
    const lowest = Math.min(t[0]!.p, t[1]!.p);
    expect(Math.min(t[0]!.pHolm, t[1]!.pHolm)).toBeCloseTo(Math.min(1, 2 * lowest), 12);
  });

  it('bootstrap intervals of the seed-mean frontier contain the truth at the nominal-ish rate', () => {
    const rng = new Rng(5);
    let covered = 0;
    let total = 0;
    for (let i = 0; i < 40; i++) {
      const sw = sweep(rng, 0, 0.0, 0.05);
      const a = sw[0];
      const { intervals, meanOverRange } = frontierIntervals([a!], [8], [4, 32], resampler, { replicates: 200, seed: i });
      const iv = intervals[0]!.points[0]!;
      // Truth at L0 8 on this evaluation set: 1/8 plus the mean of its common block effects.
      const truth = 1 / 8 + sw.commonMean;
      total++;
      if (iv.lo <= truth && iv.hi >= truth) covered++;
      expect(iv.lo).toBeLessThanOrEqual(iv.mean);
      expect(iv.hi).toBeGreaterThanOrEqual(iv.mean);
      expect(meanOverRange).toHaveLength(1);
    }
    expect(covered / total).toBeGreaterThan(0.9);
  });
});
