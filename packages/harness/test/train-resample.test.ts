/**
 * `saelab train` and dead-latent resampling: ReLU resamples by its recipe (every 10% of the run up to 60%), a
 * latent-killing init gets latents resampled, `--no-resample` turns it off, `--resample` turns it on for TopK (whose
 * recipe relies on AuxK); cfg.json records the run's setting and how many latents were resampled.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir, writeSynthetic } from './util.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let xPath: string;
beforeAll(async () => {
  tmp = await tempDir('resample');
  xPath = join(tmp.dir, 'x.npy');
  await writeSynthetic(xPath, { rows: 2000, dIn: 8 });
});
afterAll(() => tmp.cleanup());

const run = async (name: string, ...more: string[]) => {
  const out = join(tmp.dir, name);
  // λ 50 on a fresh ReLU SAE silences most latents within a few steps: resampling has dead latents to act on.
  const r = await cli('train', '--activations', xPath, '--out', out, '--d-sae', '32', '--steps', '40', '--batch', '64', '--lr', '0.01', '--quiet', ...more);
  expect(r.code, r.stderr).toBe(0);
  const cfg = JSON.parse(await readFile(join(out, 'cfg.json'), 'utf8')) as { saelab: { config: { trainer: { resample: unknown } }; resampled_latents: number } };
  return cfg.saelab;
};

describe('saelab train: resampling', () => {
  it('ReLU resamples by default, not with --no-resample; TopK only with --resample', async () => {
    const relu = await run('relu', '--arch', 'relu', '--sparsity', '50');
    expect(relu.config.trainer.resample).toMatchObject({ every: 4, until: 24 });
    expect(relu.resampled_latents).toBeGreaterThan(0);
    const off = await run('relu-off', '--arch', 'relu', '--sparsity', '50', '--no-resample');
    expect(off.config.trainer.resample).toBeNull();
    expect(off.resampled_latents).toBe(0);
    const topk = await run('topk', '--arch', 'topk', '--k', '2');
    expect(topk.config.trainer.resample).toBeNull();
    const topkOn = await run('topk-on', '--arch', 'topk', '--k', '2', '--resample');
    expect(topkOn.config.trainer.resample).toMatchObject({ every: 4, until: 24 });
  }, 60_000);
});
