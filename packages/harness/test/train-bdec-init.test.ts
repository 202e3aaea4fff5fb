/**
 * `--b-dec-init geometric-median`: b_dec starts at the geometric median of a training sample, in the normalised
 * space the SAE trains in, so the saved (folded) b_dec is the median in raw activation space.
 * The data: a cloud around a known centre c plus 15% outliers far along one axis — the median stays near c, the
 * mean does not, so the test tells the two apart.
 */
import { join } from 'node:path';
import { Rng, writeNpyFile } from '@saelab/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSae } from '../src/sae-folder.js';
import { parseTrainOptions, trainSae } from '../src/train.js';
import { tempDir } from './util.js';

const D = 6;
const ROWS = 1000;
const CENTRE = [3, -2, 5, 0.5, -4, 1];

let tmp: Awaited<ReturnType<typeof tempDir>>;
let xPath: string;

beforeAll(async () => {
  tmp = await tempDir('bdec');
  xPath = join(tmp.dir, 'x.npy');
  const rng = new Rng(5);
  const data = new Float32Array(ROWS * D);
  for (let r = 0; r < ROWS; r++) {
    for (let j = 0; j < D; j++) data[r * D + j] = CENTRE[j]! + 0.3 * rng.normal();
    if (r % 7 === 0) data[r * D] += 100; // outliers: they drag the mean of column 0 by ~14
  }
  await writeNpyFile(xPath, { data, shape: [ROWS, D] });
});
afterAll(() => tmp.cleanup());

// A learning rate so small that one Adam step (which moves each weight by ~lr) leaves b_dec at its init.
const opts = (out: string, bDecInit: 'zero' | 'geometric-median') => ({
  arch: 'topk' as const,
  activations: xPath,
  out,
  dSae: 12,
  k: 2,
  steps: 1,
  batch: 64,
  lr: 1e-9,
  evalRows: 100,
  quiet: true,
  bDecInit,
});

describe('--b-dec-init', () => {
  it('geometric-median puts the saved b_dec at the robust centre of the data (after folding C)', async () => {
    const r = await trainSae(opts(join(tmp.dir, 'gm'), 'geometric-median'));
    expect(r.normScale).toBeGreaterThan(2); // normalisation was on, so the fold is exercised
    const { params } = await loadSae(join(tmp.dir, 'gm'));
    const bDec = params.b_dec!.data;
    for (let j = 0; j < D; j++) expect(Math.abs(bDec[j]! - CENTRE[j]!)).toBeLessThan(0.6);
  });

  it('zero (the default) leaves b_dec at the origin', async () => {
    await trainSae(opts(join(tmp.dir, 'zero'), 'zero'));
    const { params } = await loadSae(join(tmp.dir, 'zero'));
    for (const v of params.b_dec!.data) expect(Math.abs(v)).toBeLessThan(1e-5);
  });

  it('is refused with --init, whose b_dec is kept exactly', () => {
    expect(() => parseTrainOptions({ ...opts('x', 'geometric-median'), init: 'some-folder' })).toThrow(/--b-dec-init/);
  });
});
