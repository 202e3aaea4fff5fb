/**
 * One-pass L0 targeting end to end: `saelab train --l0-target` on real (synthetic sparse) activations lands the
 * held-out L0 near the target in one run for each λ-based architecture, from the recipe's λ.
 */
import { join } from 'node:path';
import { syntheticSparseData, writeNpyFile } from '@saelab/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSae } from '../src/sae-folder.js';
import { parseTrainOptions, trainSae } from '../src/train.js';
import { tempDir } from './util.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let xPath: string;

beforeAll(async () => {
  tmp = await tempDir('l0target');
  xPath = join(tmp.dir, 'x.npy');
  const { x } = syntheticSparseData({ rows: 16_000, dIn: 16, features: 96, meanActive: 5, seed: 3 });
  await writeNpyFile(xPath, x);
});
afterAll(() => tmp.cleanup());

describe('--l0-target', () => {
  for (const [arch, lr] of [['relu', 3e-3], ['jumprelu', 1e-2], ['gated', 3e-3]] as const) {
    it(`${arch}: held-out L0 within 25% of the target, λ moved from its start and saved`, async () => {
      const out = join(tmp.dir, arch);
      const r = await trainSae(
        { arch, activations: xPath, out, dSae: 48, batch: 256, steps: 500, lr, l0Target: 6, evalRows: 4000, quiet: true, sparsityWarmup: 50 },
      );
      expect(Math.abs(r.metrics!.l0.mean / 6 - 1)).toBeLessThan(0.25);
      const sae = await loadSae(out);
      const ctl = (sae.json.saelab as { l0_controller: { final_lambda: number; initial_lambda: number } }).l0_controller;
      expect(ctl.final_lambda).toBe(r.finalSparsity);
      expect(ctl.final_lambda).not.toBe(ctl.initial_lambda);
    }, 240_000);
  }

  it('is refused for k-architectures with a one-line error', () => {
    expect(() => parseTrainOptions({ arch: 'topk', activations: xPath, out: 'x', k: 4, l0Target: 4 })).toThrow(/--l0-target: topk sets its L0 with --k/);
  });
});
