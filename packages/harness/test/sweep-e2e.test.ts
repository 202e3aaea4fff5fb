/**
 * A whole sweep at toy scale through the real pipeline: build the default Longhorn LM on the npm corpora, harvest,
 * calibrate, train, evaluate (with ΔLM loss by splicing), plot, report — then the cache: a re-run trains nothing,
 * changing one architecture's settings retrains only its points, a single `sweep-point` run merges into the next
 * sweep, and the `--activations` path works without an LM.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spliceCrossEntropy } from '@saelab/activations';
import { jsEngine, readNpyRows, syntheticSparseData, writeNpyFile } from '@saelab/core';
import { loadSae } from '../src/sae-folder.js';
import { type SweepRunResult, parseSweepConfig, prepareSweepData, runSweep, runSweepPoint } from '../src/sweep/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'sweep-e2e-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const cacheDir = join(tmp, 'cache');
const quiet = { quiet: true, engine: jsEngine, log: () => undefined };

const raw = {
  name: 'e2e',
  lm: { vocabSize: 64, dModel: 8, nLayers: 2, dState: 4, contextLength: 16, batch: 2, steps: 3, lr: 0.01, warmupSteps: 1, maxChars: 20_000 },
  data: { contextLength: 16, trainTokens: 3000, evalTokens: 256, batch: 8 },
  grid: { architectures: ['relu', 'topk'], l0Targets: [2, 4] },
  training: { tokens: 3000, batch: 250, lr: 0.01 },
  calibration: { maxIters: 3, minSteps: 4, stepsFraction: 0.5, tolerance: 0.3, refineRuns: 0 },
  // Toy-sized probing data and dashboards (the interpretability section runs in every sweep with an LM).
  interp: { maxPerClass: 40, posDocTokens: 64, dashboardTokens: 1500, dashboardLatents: 4 },
};

describe('sweep end to end (default source: Longhorn LM on the npm corpora)', () => {
  const config = parseSweepConfig(raw);
  let first: SweepRunResult;
  beforeAll(async () => {
    first = await runSweep({ config, cacheDir, out: join(tmp, 'run1'), ...quiet });
  });

  it('writes every output, with one result per grid point', () => {
    for (const f of ['frontier.json', 'frontier.svg', 'frontier.png', 'report.html', 'report.md', 'sweep-config.json']) expect(existsSync(join(first.runDir, f))).toBe(true);
    const fj = JSON.parse(readFileSync(join(first.runDir, 'frontier.json'), 'utf8'));
    expect(fj.points.map((p: { id: string }) => p.id).sort()).toEqual(['relu-l0_2-x8-s0', 'relu-l0_4-x8-s0', 'topk-l0_2-x8-s0', 'topk-l0_4-x8-s0']);
    expect(fj.provenance.dataFingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(fj.summaries.map((s: { metric: string }) => s.metric)).toEqual(['ΔLM loss', 'FVU']);
    expect(first.computed).toBe(4);
    expect(readFileSync(join(first.runDir, 'report.md'), 'utf8')).toMatch(/!\[frontiers\]\(frontier.png\)/);
    // The report names cache paths relative to the cache, not as this machine's absolute paths.
    for (const f of ['report.md', 'report.html']) expect(readFileSync(join(first.runDir, f), 'utf8')).not.toContain(cacheDir);
    expect(readFileSync(join(first.runDir, 'report.md'), 'utf8')).toMatch(/from <cache>\/lm\//);
  });

  it('probes every point, writes one dashboard per architecture and links them from report.html', () => {
    const fj = JSON.parse(readFileSync(join(first.runDir, 'frontier.json'), 'utf8'));
    for (const p of fj.points) {
      expect(Object.keys(p.probe).sort()).toEqual(['brown-genre', 'pos', 'sotu-era', 'sotu-party']);
      for (const t of Object.values(p.probe) as { meanAccuracy: Record<string, number> }[]) {
        expect(Object.keys(t.meanAccuracy)).toEqual(['1', '2', '5', '20']);
        for (const a of Object.values(t.meanAccuracy)) expect(a).toBeGreaterThanOrEqual(0);
      }
    }
    expect(Object.keys(fj.interpretability.baselines).sort()).toEqual(['brown-genre', 'pos', 'sotu-era', 'sotu-party']);
    expect(fj.interpretability.dashboards.map((d: { arch: string }) => d.arch).sort()).toEqual(['relu', 'topk']);
    const html = readFileSync(join(first.runDir, 'report.html'), 'utf8');
    expect(html).toMatch(/<section id="interpretability">/);
    expect(html).toMatch(/Fidelity ordering \(ΔLM loss/);
    for (const d of fj.interpretability.dashboards) {
      expect(html).toContain(`href="${d.path}"`);
      expect(existsSync(join(first.runDir, d.path))).toBe(true);
    }
    expect(html).not.toMatch(/<script|src="http|href="http/);
  });

  it('measures every point on the same held-out tokens, TopK at exactly k', () => {
    const ceClean = new Set(first.points.map((p) => p.lm!.ceClean));
    expect(ceClean.size).toBe(1);
    for (const p of first.points) {
      expect(p.metrics.rows).toBe(256); // 16 validation windows × 16 tokens (no BOS in the Longhorn LM)
      expect(p.lm!.tokens).toBe(16 * 15);
      expect(Number.isFinite(p.lm!.deltaLoss)).toBe(true);
      expect(p.lm!.deltaLoss).toBeCloseTo(p.lm!.ceSpliced - p.lm!.ceClean, 12);
      if (p.arch === 'topk') expect(p.metrics.l0.mean).toBe(p.target);
      else expect(p.calibration!.trace.length).toBeGreaterThan(0);
    }
  });

  it('adds baselines, the field metrics, density and per-window sums that agree with the main metrics', () => {
    const fj = JSON.parse(readFileSync(join(first.runDir, 'frontier.json'), 'utf8'));
    const b = fj.baselines;
    // PCA: FVU never rises with rank; at full rank the reconstruction is exact (up to float32 rounding).
    const fvus = b.pca.map((l: { fvu: number }) => l.fvu);
    for (let i = 1; i < fvus.length; i++) expect(fvus[i]).toBeLessThanOrEqual(fvus[i - 1] + 1e-9);
    expect(b.pca.at(-1).rank).toBe(8);
    expect(b.pca.at(-1).fvu).toBeLessThan(1e-6);
    expect(Math.abs(b.pca.at(-1).lm.deltaLoss)).toBeLessThan(1e-3);
    expect(b.meanAblation.fvu).toBeGreaterThan(0.99); // the training mean on held-out rows: FVU ≥ 1 up to the mean shift
    expect(b.zeroAblation.lm.deltaLoss).toBeCloseTo(first.points[0]!.lm!.ceZero - first.points[0]!.lm!.ceClean, 6);
    for (const p of first.points) {
      const f = p.field!;
      const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
      expect(sum(f.blocks.rows)).toBe(p.metrics.rows);
      expect(sum(f.blocks.l0) / sum(f.blocks.rows)).toBeCloseTo(p.metrics.l0.mean, 9);
      expect(sum(f.blocks.sse) / sum(f.blocks.rows)).toBeCloseTo(p.metrics.mse, 4);
      expect(sum(f.blocks.dCe!) / sum(f.blocks.predictions!)).toBeCloseTo(p.lm!.deltaLoss, 9);
      expect(f.density.dead + sum(f.density.counts)).toBe(p.dSae);
      expect(f.density.dead / p.dSae).toBeCloseTo(p.metrics.deadFraction as number, 12);
      // No BOS in the Longhorn LM: SAEBench's CE loss score is our CE recovered.
      expect(f.saebench.lm!.ceLossScore!).toBeCloseTo(p.lm!.ceRecovered!, 9);
      expect(f.saebench.lm!.klDivScore!).toBeLessThanOrEqual(1);
      expect(f.saebench.explainedVariance!).toBeLessThanOrEqual(1);
      const dtw = p.metrics.deadFractionTrainWindow as number;
      expect(dtw).toBeGreaterThanOrEqual(0);
      expect(dtw).toBeLessThanOrEqual(1);
    }
    const md = readFileSync(join(first.runDir, 'report.md'), 'utf8');
    for (const h of ['## Baselines', '## Metrics as the field defines them', '## Latent density', 'PCA rank 1']) expect(md).toContain(h);
    expect(existsSync(join(first.runDir, 'density.png'))).toBe(true);
  });

  it('saves loadable SAELens folders of the right shape', async () => {
    for (const p of first.points) {
      const sae = await loadSae(join(first.runDir, 'saes', p.id));
      expect(sae.cfg.dIn).toBe(8);
      expect(sae.cfg.dSae).toBe(64);
      expect(sae.arch.name).toBe(p.arch);
    }
  });

  it('holds out exactly the activations of the spliced tokens (and splicing x itself changes nothing)', async () => {
    const data = await prepareSweepData(config, cacheDir, () => undefined);
    try {
      const ev = data.evalWindows!;
      const T = ev.seqLen;
      const { acts } = await data.lm!.lm.run(ev.tokens.subarray(0, 2 * T), 2, T, { read: [data.site], skipLogits: true });
      const stored = await data.heldOut.readRows(0, 2 * T);
      expect(Array.from(stored)).toEqual(Array.from(acts[data.site]!.data));
      const same = await spliceCrossEntropy(data.lm!.lm, ev.tokens.subarray(0, 2 * T), 2, T, data.site, (x) => x);
      expect(same.deltaLoss).toBe(0);
    } finally {
      await data.close();
    }
  });

  it('re-running is a cache hit; changing one architecture reruns only its points', async () => {
    const again = await runSweep({ config, cacheDir, out: join(tmp, 'run2'), ...quiet });
    expect([again.computed, again.cached]).toEqual([0, 4]);
    expect(again.points.map((p) => p.hash)).toEqual(first.points.map((p) => p.hash));
    const changed = parseSweepConfig({ ...raw, archs: { topk: { lr: 0.02 } } });
    const third = await runSweep({ config: changed, cacheDir, out: join(tmp, 'run3'), ...quiet });
    expect(third.computed).toBe(2);
    const retrained = third.points.filter((p) => !first.points.some((q) => q.hash === p.hash)).map((p) => p.arch);
    expect(retrained).toEqual(['topk', 'topk']);
  });

  it('runs one point alone (fan-out) and the next sweep merges it from the cache', async () => {
    const twoSeeds = parseSweepConfig({ ...raw, grid: { ...raw.grid, seeds: [0, 1] } });
    const one = await runSweepPoint({ config: twoSeeds, pointId: 'topk-l0_2-x8-s1', cacheDir, quiet: true });
    expect(one.cached).toBe(false);
    await expect(runSweepPoint({ config: twoSeeds, pointId: 'nope', cacheDir })).rejects.toThrow(/no point 'nope'/);
    const merged = await runSweep({ config: twoSeeds, cacheDir, out: join(tmp, 'run4'), ...quiet });
    expect([merged.computed, merged.cached]).toEqual([3, 5]);
    expect(merged.summaries[0]!.seeds).toBe(2);
  });
});

describe('sweep on given activations (no LM)', () => {
  it('reports FVU frontiers only and says why', async () => {
    const { x } = syntheticSparseData({ rows: 2000, dIn: 10, features: 30, meanActive: 3, seed: 2 });
    const file = join(tmp, 'acts.npy');
    await writeNpyFile(file, x);
    const config = parseSweepConfig({ ...raw, name: 'npy', activations: file, lm: undefined, grid: { architectures: ['topk'], l0Targets: [2, 4] }, data: { ...raw.data, evalTokens: 300 } });
    const r = await runSweep({ config, cacheDir, out: join(tmp, 'run-npy'), ...quiet });
    expect(r.summaries.map((s) => s.metric)).toEqual(['FVU']);
    expect(r.points.every((p) => p.lm === null)).toBe(true);
    // The held-out rows are the file's last 300 rows, and the metrics were computed on exactly those.
    expect(r.points[0]!.metrics.rows).toBe(300);
    expect(Array.from(await readNpyRows(file, 1700, 1))).toEqual(Array.from(x.data.subarray(1700 * 10, 1701 * 10)));
    expect(readFileSync(join(r.runDir, 'report.md'), 'utf8')).toMatch(/No language model/);
  });
});
