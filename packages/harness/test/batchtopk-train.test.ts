/**
 * BatchTopK end to end through `saelab train`: the saved folder is a JumpReLU folder (SAELens's inference form of
 * BatchTopK) with one global threshold, it loads as JumpReLU, encodes as the in-memory BatchTopK does, and its
 * held-out L0 lands near k (exact k holds only per training batch).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { jsEngine } from '@saelab/core';
import { batchTopK } from '@saelab/sae-topk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSae } from '../src/sae-folder.js';
import { trainSae } from '../src/train.js';
import { cli, tempDir, writeSynthetic } from './util.js';

const D_IN = 16;
let tmp: Awaited<ReturnType<typeof tempDir>>;
let xPath: string;
let x: Float32Array;

beforeAll(async () => {
  tmp = await tempDir('batchtopk');
  xPath = join(tmp.dir, 'x.npy');
  x = (await writeSynthetic(xPath, { rows: 6000, dIn: D_IN, scale: 3, seed: 4 })).data;
});
afterAll(() => tmp.cleanup());

describe('saelab train --arch batchtopk', () => {
  it('writes a JumpReLU folder with one positive threshold; it loads as JumpReLU and encodes like BatchTopK; L0 ≈ k', async () => {
    const out = join(tmp.dir, 'sae');
    const r = await trainSae({ arch: 'batchtopk', activations: xPath, out, k: 4, expansion: 4, steps: 300, batch: 128, lr: 3e-3, evalRows: 1000, quiet: true });
    const cfg = JSON.parse(await readFile(join(out, 'cfg.json'), 'utf8'));
    expect(cfg.architecture).toBe('jumprelu');
    expect(cfg.saelab_training_architecture).toBe('batchtopk');
    expect(cfg.k).toBe(4);

    const loaded = await loadSae(out);
    expect(loaded.arch.name).toBe('jumprelu');
    const theta = loaded.params.threshold!.data;
    expect(theta[0]).toBeGreaterThan(0);
    expect(theta.every((t) => t === theta[0])).toBe(true);

    const held = { data: x.slice(5000 * D_IN), shape: [1000, D_IN] };
    const asJumpRelu = await loaded.arch.encode(loaded.params, held, loaded.cfg, { engine: jsEngine });
    const asBatchTopK = await batchTopK.encode(loaded.params, held, batchTopK.configSchema.parse({ dIn: D_IN, dSae: 64, k: 4 }), { engine: jsEngine });
    expect(Array.from(asJumpRelu.data)).toEqual(Array.from(asBatchTopK.data));
    // The running-average threshold puts the held-out L0 near the training L0 of exactly k.
    expect(r.metrics!.l0.mean).toBeGreaterThan(2);
    expect(r.metrics!.l0.mean).toBeLessThan(8);
    expect(r.metrics!.fvu!).toBeLessThan(0.5);
  });

  it('is controlled by --k: --sparsity is refused by name', async () => {
    const res = await cli('train', '--arch', 'batchtopk', '--activations', xPath, '--out', join(tmp.dir, 'bad'), '--sparsity', '0.1');
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/--sparsity: batchtopk is controlled by --k/);
  });
});
