/**
 * The tuning stage: its selection rows are disjoint from the rows the report's metrics come from (the test records
 * every row the stage reads and fails if one of them is an evaluation row), its choice is applied to every point and
 * cached, and the rule picks the lowest validation FVU among on-target settings.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jsEngine, syntheticSparseData, writeNpyFile } from '@saelab/core';
import { parseSweepConfig, prepareSweepData, runSweep } from '../src/sweep/index.js';
import { type TuneEntry, beyondEdge, runTuningStage, selectSetting, tuningSplit, tuningTarget } from '../src/sweep/tune.js';

const tmp = mkdtempSync(join(tmpdir(), 'sweep-tune-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const configFor = (acts: string) =>
  parseSweepConfig({
    name: 'tune',
    activations: acts,
    data: { contextLength: 16, trainTokens: 1, evalTokens: 400 },
    grid: { architectures: ['topk', 'relu'], l0Targets: [2, 3, 4] },
    training: { tokens: 1200, batch: 100 },
    calibration: { maxIters: 3, minSteps: 4, stepsFraction: 0.5, tolerance: 0.3, refineRuns: 0 },
    tune: 'lr',
    tuning: { lrs: [3e-3, 3e-2], validationRows: 150, validationFraction: 0.2, extendEdges: 1, budgetCheck: 2 },
  });

describe('sweep tuning stage', () => {
  it('reads only training rows: the validation slice and the rows it trains on lie before every evaluation row', async () => {
    const { x } = syntheticSparseData({ rows: 2000, dIn: 12, features: 40, meanActive: 3, seed: 7 });
    const acts = join(tmp, 'acts.npy');
    await writeNpyFile(acts, x);
    const config = configFor(acts);
    const cacheDir = join(tmp, 'cache');
    const data = await prepareSweepData(config, cacheDir, () => undefined, true);
    try {
      const split = tuningSplit(config, data);
      // The three ranges are disjoint and in order: tuning train < validation < evaluation.
      expect(split.train[1]).toBe(split.validation[0]);
      expect(split.validation[1]).toBe(data.trainRows);
      expect(split.evaluation[0]).toBeGreaterThanOrEqual(split.validation[1]);
      expect(split.validation[1] - split.validation[0]).toBe(150);
      // Record every row the stage reads.
      const read: [number, number][] = [];
      const inner = data.combined.readRows.bind(data.combined);
      data.combined.readRows = (start: number, count: number) => (read.push([start, start + count]), inner(start, count));
      const { config: tuned, results } = await runTuningStage({ config, data, cacheDir, engine: jsEngine, quiet: true, log: () => undefined });
      expect(read.length).toBeGreaterThan(0);
      const evalStart = data.trainRows;
      for (const [a, b] of read) expect(b, `rows ${a}–${b} overlap the evaluation rows (from ${evalStart})`).toBeLessThanOrEqual(evalStart);
      expect(results.map((r) => r.arch)).toEqual(['topk', 'relu']);
      for (const r of results) {
        expect(r.target).toBe(tuningTarget(config));
        // The grid, then one lr past the edge the first choice sat on (both lrs of a two-lr grid are edges).
        expect(r.entries.slice(0, 2).map((e) => e.lr)).toEqual([3e-3, 3e-2]);
        expect(r.extendedLrs).toHaveLength(1);
        expect([3e-4, 3e-1]).toContain(r.extendedLrs![0]);
        expect(r.entries[2]!.lr).toBe(r.extendedLrs![0]);
        expect(r.budgetCheck!.factor).toBe(2);
        expect(Number.isFinite(r.budgetCheck!.fvu)).toBe(true);
        expect(r.validation).toEqual({ start: split.validation[0], rows: 150 });
        expect(tuned.archs[r.arch]!.lr).toBe(r.chosen.lr);
      }
      // k = target (on the grid's lrs; one far past the edge may leave rows with fewer than k positive pre-activations)
      expect(results[0]!.entries.every((e) => e.sparsity === 3)).toBe(true);
      expect(results[0]!.entries.slice(0, 2).every((e) => Math.abs(e.l0 - 3) < 1e-9)).toBe(true);
    } finally {
      await data.close();
    }
  }, 300_000);

  it('the sweep trains every point with the chosen lr, reports the grid, and the choice is cached', async () => {
    const acts = join(tmp, 'acts.npy');
    const config = { ...configFor(acts), grid: { ...configFor(acts).grid, architectures: ['topk' as const], l0Targets: [3] } };
    const cacheDir = join(tmp, 'cache');
    const r = await runSweep({ config, cacheDir, out: join(tmp, 'run'), quiet: true, engine: jsEngine, log: () => undefined });
    const frontier = JSON.parse(readFileSync(join(r.runDir, 'frontier.json'), 'utf8'));
    const chosen = frontier.tuning[0].chosen.lr;
    for (const p of frontier.points) {
      expect(p.train.lr).toBe(chosen);
      expect(readFileSync(join(r.runDir, 'curves', `${p.id}.jsonl`), 'utf8').split('\n').filter(Boolean).length).toBeGreaterThan(5);
      expect(p.train.convergence).toHaveProperty('relativeDrop');
    }
    const md = readFileSync(join(r.runDir, 'report.md'), 'utf8');
    expect(md).toContain('## Tuning stage');
    expect(md).toContain('**✓**');
    // A re-run is a cache hit, tuning included (logged lines would name tuning runs otherwise).
    const lines: string[] = [];
    await runSweep({ config, cacheDir, out: join(tmp, 'run2'), quiet: true, engine: jsEngine, log: (s) => lines.push(s) });
    expect(lines.filter((l) => l.includes('tune '))).toEqual([]);
  }, 300_000);
});

describe('the selection rule', () => {
  const e = (lr: number, l0: number, fvu: number, onTarget: boolean): TuneEntry => ({ lr, sparsity: 1, l0, fvu, mse: fvu, deadFractionTrainWindow: 0, onTarget, seconds: 1 });
  it('takes the lowest FVU among on-target settings, not a lower FVU bought with a higher L0', () => {
    const r = selectSetting('relu', 8, 16, 'lr', { start: 0, rows: 1 }, [e(1e-3, 16, 0.2, true), e(3e-3, 30, 0.05, false), e(1e-2, 17, 0.1, true)]);
    expect(r.chosen.lr).toBe(1e-2);
    expect(r.offTarget).toBe(false);
  });
  it('does not choose a setting at or over the dead bar while an on-target one is under it', () => {
    const dead = (x: TuneEntry, d: number): TuneEntry => ({ ...x, deadFractionTrainWindow: d });
    const r = selectSetting('topk', 8, 8, 'lr', { start: 0, rows: 1 }, [dead(e(1e-3, 8, 0.025, true), 0.03), dead(e(1e-2, 8, 0.017, true), 0.59)], 0.1);
    expect(r.chosen.lr).toBe(1e-3);
    expect(r.deadFallback).toBeUndefined();
    const all = selectSetting('topk', 8, 8, 'lr', { start: 0, rows: 1 }, [dead(e(1e-3, 8, 0.025, true), 0.2), dead(e(1e-2, 8, 0.017, true), 0.59)], 0.1);
    expect(all.chosen.lr).toBe(1e-3); // the fewest dead, flagged
    expect(all.deadFallback).toBe(true);
  });
  it('extends the lr grid past the edge the choice sits on, by the outermost ratio, and not from the middle', () => {
    const grid = [e(3e-4, 8, 0.3, true), e(1e-3, 8, 0.2, true), e(3e-3, 8, 0.1, true), e(1e-2, 8, 0.05, true)];
    expect(beyondEdge(grid, grid[3]!)!.lr).toBeCloseTo(3.33e-2, 12);
    expect(beyondEdge(grid, grid[0]!)!.lr).toBeCloseTo(9e-5, 12);
    expect(beyondEdge(grid, grid[2]!)).toBeNull();
  });
  it('falls back to the lowest FVU overall, flagged, when nothing is on target', () => {
    const r = selectSetting('relu', 8, 16, 'lr', { start: 0, rows: 1 }, [e(1e-3, 40, 0.2, false), e(3e-3, 30, 0.05, false)]);
    expect(r.chosen.lr).toBe(3e-3);
    expect(r.offTarget).toBe(true);
  });
});
