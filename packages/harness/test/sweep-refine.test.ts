/**
 * Full-length refinement of a calibrated λ: with a tolerance no run can meet, every refinement run happens, each
 * full-length (λ, L0) is recorded once, and the point keeps the λ whose L0 is nearest the target.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { jsEngine, syntheticSparseData, writeNpyFile } from '@saelab/core';
import { parseSweepConfig, runSweep } from '../src/sweep/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'sweep-refine-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

it('refinement records each full-length probe once and keeps the best', async () => {
  const { x } = syntheticSparseData({ rows: 2000, dIn: 12, features: 40, meanActive: 3, seed: 7 });
  await writeNpyFile(join(tmp, 'acts.npy'), x);
  const config = parseSweepConfig({
    name: 'refine',
    activations: join(tmp, 'acts.npy'),
    data: { contextLength: 16, trainTokens: 1, evalTokens: 400 },
    grid: { architectures: ['relu'], l0Targets: [3] },
    training: { tokens: 2000, batch: 200, lr: 0.01 },
    calibration: { maxIters: 2, minSteps: 4, stepsFraction: 0.5, tolerance: 1e-6, refineRuns: 2 },
  });
  const r = await runSweep({ config, cacheDir: join(tmp, 'cache'), out: join(tmp, 'run'), quiet: true, engine: jsEngine, log: () => undefined });
  const frontier = JSON.parse(readFileSync(join(r.runDir, 'frontier.json'), 'utf8'));
  const point = frontier.points[0];
  const refined: { lambda: number; l0: number }[] = point.calibration.refined;
  // The first full-length run plus one per refinement run, no λ twice.
  expect(refined.length).toBe(3);
  expect(new Set(refined.map((q) => q.lambda)).size).toBe(refined.length);
  const miss = (q: { l0: number }) => Math.abs(Math.log(Math.max(q.l0, 1e-3) / 3));
  const best = refined.reduce((a, b) => (miss(b) < miss(a) ? b : a));
  expect(point.sparsity.value).toBe(best.lambda);
}, 120_000);
