/**
 * Sweep building blocks that need no training: Pareto frontiers, their area and orderings, matched-L0 calibration
 * against a known L0(λ) curve, config validation/overrides, and cache keys that change only where they should.
 */
import { describe, expect, it } from 'vitest';
import {
  areaUnderFrontier,
  calibrateLambda,
  expandGrid,
  frontierAt,
  lambdaFromHints,
  l0Slope,
  paretoFrontier,
  parseSetOverride,
  parseSweepConfig,
  pointHash,
  resolveSweepConfig,
  summarizeFrontiers,
} from '../src/sweep/index.js';

const baseConfig = () => ({
  name: 't',
  lm: { vocabSize: 64, dModel: 8, nLayers: 1, contextLength: 16, batch: 2, steps: 2, lr: 0.01 },
  data: { contextLength: 16, trainTokens: 1000, evalTokens: 100 },
  grid: { architectures: ['relu', 'topk'], l0Targets: [4, 8], seeds: [0, 1] },
  training: { tokens: 1000, batch: 100 },
});

describe('Pareto frontier', () => {
  it('keeps exactly the non-dominated points, sorted by L0', () => {
    const pts = [
      { l0: 10, y: 0.5 },
      { l0: 5, y: 0.9 },
      { l0: 20, y: 0.6 }, // dominated by (10, 0.5)
      { l0: 40, y: 0.2 },
      { l0: 5, y: 1.2 }, // same L0, worse
    ];
    const f = paretoFrontier(pts);
    expect(f).toEqual([
      { l0: 5, y: 0.9 },
      { l0: 10, y: 0.5 },
      { l0: 40, y: 0.2 },
    ]);
    // Brute force: a point is on the frontier iff no other point is ≤ in both and < in one.
    for (const p of pts) {
      const dominated = pts.some((q) => q !== p && q.l0 <= p.l0 && q.y <= p.y && (q.l0 < p.l0 || q.y < p.y));
      expect(f.some((q) => q.l0 === p.l0 && q.y === p.y)).toBe(!dominated);
    }
  });

  it('interpolates linearly in ln L0 and integrates exactly (area of y = a + b·ln L0)', () => {
    const a = 2;
    const b = -0.3;
    const frontier = [4, 8, 16, 32].map((l0) => ({ l0, y: a + b * Math.log(l0) }));
    expect(frontierAt(frontier, Math.sqrt(8 * 16))).toBeCloseTo(a + b * Math.log(Math.sqrt(128)), 12);
    expect(frontierAt(frontier, 2)).toBeNull();
    const [lo, hi] = [5, 30];
    const exact = a * (Math.log(hi) - Math.log(lo)) + (b / 2) * (Math.log(hi) ** 2 - Math.log(lo) ** 2);
    expect(areaUnderFrontier(frontier, lo, hi)).toBeCloseTo(exact, 10);
    expect(areaUnderFrontier(frontier, 1, 30)).toBeNull();
  });

  it('orders series over the shared L0 range and says when seeds do not separate them', () => {
    // Three seeds (the test behind "separated" is Welch's t on per-seed values, Holm-corrected: frontier-stats.ts).
    const mk = (name: string, offset: number, spread: number) => ({
      name,
      points: [0, 1, 2].flatMap((seed) => [4, 8, 16, 32].map((l0) => ({ seed, setting: `l0_${l0}`, l0, y: offset + 1 / l0 + (seed - 1) * spread }))),
    });
    const s = summarizeFrontiers('FVU', [mk('good', 0, 0.001), mk('bad', 0.2, 0.001), mk('close', 0.0005, 0.01)]);
    expect(s.sharedRange).toEqual([4, 32]);
    expect(s.seeds).toBe(3);
    for (const o of s.orderings) {
      expect(o.ranking.map((r) => r.name)).toEqual(['good', 'close', 'bad']);
      expect(o.separated).toEqual([false, true]); // good vs close overlap at these seeds; close vs bad do not
    }
    const byName = Object.fromEntries(s.series.map((x) => [x.name, x]));
    expect(byName.good!.meanOverRange!).toBeLessThan(byName.bad!.meanOverRange!);
    expect(s.statements.join(' ')).toMatch(/not separable/);
  });

  it('reports no shared range when the L0 ranges do not overlap', () => {
    const s = summarizeFrontiers('FVU', [
      { name: 'a', points: [{ seed: 0, setting: '1', l0: 1, y: 1 }, { seed: 0, setting: '2', l0: 2, y: 0.5 }] },
      { name: 'b', points: [{ seed: 0, setting: '1', l0: 10, y: 1 }, { seed: 0, setting: '2', l0: 20, y: 0.5 }] },
    ]);
    expect(s.sharedRange).toBeNull();
    expect(s.statements[0]).toMatch(/do not overlap/);
  });
});

describe('matched-L0 calibration', () => {
  // A known, decreasing L0(λ) = 50 · λ^−1.3, with a little deterministic wobble like training noise.
  const l0Of = (lambda: number) => 50 * lambda ** -1.3 * (1 + 0.02 * Math.sin(7 * Math.log(lambda)));

  for (const target of [2, 16, 128]) {
    it(`lands within the tolerance of target L0 ${target} from a far-off start`, async () => {
      const r = await calibrateLambda({ target, initialLambda: 1e-3, tolerance: 0.1, maxIters: 20, probe: async (l) => l0Of(l) });
      expect(r.converged).toBe(true);
      expect(Math.abs(r.l0 / target - 1)).toBeLessThanOrEqual(0.1);
      expect(r.l0).toBeCloseTo(l0Of(r.lambda), 12);
    });
  }

  it('returns the best probe, unconverged, when the budget runs out', async () => {
    const r = await calibrateLambda({ target: 10, initialLambda: 1e-6, tolerance: 0.01, maxIters: 3, probe: async (l) => l0Of(l) });
    expect(r.converged).toBe(false);
    expect(r.trace).toHaveLength(3);
    const err = (x: number) => Math.abs(Math.log(x / 10));
    expect(err(r.l0)).toBe(Math.min(...r.trace.map((p) => err(p.l0))));
  });

  it('estimates the power-law slope and uses it to start from neighbouring targets', () => {
    const trace = [0.1, 1, 10].map((lambda) => ({ lambda, l0: 50 * lambda ** -1.3 }));
    expect(l0Slope(trace)).toBeCloseTo(-1.3, 10);
    const guess = lambdaFromHints(20, trace)!;
    expect(50 * guess ** -1.3).toBeCloseTo(20, 8);
    expect(lambdaFromHints(20, [])).toBeNull();
  });
});

describe('sweep config', () => {
  it('fills defaults, expands the grid and names every point', () => {
    const c = parseSweepConfig(baseConfig());
    const ids = expandGrid(c).map((p) => p.id);
    expect(ids).toEqual([
      'relu-l0_4-x8-s0', 'relu-l0_4-x8-s1', 'relu-l0_8-x8-s0', 'relu-l0_8-x8-s1',
      'topk-l0_4-x8-s0', 'topk-l0_4-x8-s1', 'topk-l0_8-x8-s0', 'topk-l0_8-x8-s1',
    ]);
  });

  it('rejects bad configs with the field named', () => {
    expect(() => parseSweepConfig({ ...baseConfig(), grid: { architectures: ['relu'], l0Targets: [] } })).toThrow(/grid.l0Targets: the grid is empty/);
    expect(() => parseSweepConfig({ ...baseConfig(), grid: { architectures: ['lstm'], l0Targets: [4] } })).toThrow(/grid.architectures.0/);
    expect(() => parseSweepConfig({ ...baseConfig(), source: 'hf:gpt2' })).toThrow(/source: expected default, llama2c:PATH or longhorn:DIR/);
    expect(() => parseSweepConfig({ ...baseConfig(), training: { tokens: -1, batch: 10 } })).toThrow(/training.tokens/);
    expect(() => parseSweepConfig({ ...baseConfig(), typo: 1 })).toThrow(/typo/);
  });

  it('applies a preset, then flags and --set overrides', async () => {
    const c = await resolveSweepConfig({ preset: 'smoke', archs: ['topk'], l0: [3, 6], set: ['training.lr=0.5', 'archs.topk.batch=64'] });
    expect(c.name).toBe('smoke');
    expect(c.grid.architectures).toEqual(['topk']);
    expect(c.grid.l0Targets).toEqual([3, 6]);
    expect(c.training.lr).toBe(0.5);
    expect(c.archs.topk?.batch).toBe(64);
    expect(parseSetOverride('a.b=[1,2]')).toEqual({ a: { b: [1, 2] } });
    expect(() => parseSetOverride('nothing')).toThrow(/path.to.key=value/);
    await expect(resolveSweepConfig({ preset: 'nope' })).rejects.toThrow(/unknown preset 'nope' \(have .*smoke/);
  });

  it('changing one architecture’s settings changes only that architecture’s point hashes', () => {
    const c1 = parseSweepConfig(baseConfig());
    const c2 = parseSweepConfig({ ...baseConfig(), archs: { topk: { lr: 0.01 } } });
    for (const p of expandGrid(c1)) {
      const same = pointHash(c1, p, 'data', 'code') === pointHash(c2, p, 'data', 'code');
      expect(same).toBe(p.arch !== 'topk');
      expect(pointHash(c1, p, 'data', 'code')).not.toBe(pointHash(c1, p, 'other-data', 'code'));
    }
  });
});

describe('frontier extension', () => {
  it('extends a frontier flat to the series’ largest L0, so a one-point frontier still spans its series', () => {
    const s = summarizeFrontiers('ΔLM loss', [
      { name: 'a', points: [{ seed: 0, setting: '1', l0: 4, y: 0.1 }, { seed: 0, setting: '2', l0: 16, y: 0.2 }] },
      { name: 'b', points: [{ seed: 0, setting: '1', l0: 3, y: 0.3 }, { seed: 0, setting: '2', l0: 12, y: 0.05 }] },
    ]);
    expect(s.series[0]!.frontier).toEqual([{ l0: 4, y: 0.1 }]);
    expect(s.sharedRange).toEqual([4, 12]);
    expect(s.series[0]!.meanOverRange).toBeCloseTo(0.1, 12);
    expect(frontierAt(s.series[0]!.frontier, 16, 16)).toBe(0.1);
    expect(frontierAt(s.series[0]!.frontier, 17, 16)).toBeNull();
  });
});
