/**
 * trainSae: exact resume after an abort, refusal of a stale state, and normalisation folding (the saved raw-space
 * weights behave on x exactly as the training weights do on x / C).
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type GemmEngine, defaultEngine, loadTrainingState } from '@saelab/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statePathFor, trainSae } from '../src/train.js';
import { decode64, encode64, metrics64, tempDir, toP64, writeSynthetic } from './util.js';

const D_IN = 10;
const D_SAE = 20;
const ROWS = 900;
const EVAL_ROWS = 90;

let tmp: Awaited<ReturnType<typeof tempDir>>;
let xPath: string;
let x: Float32Array;
let engine: GemmEngine;

beforeAll(async () => {
  tmp = await tempDir('resume');
  xPath = join(tmp.dir, 'x.npy');
  x = (await writeSynthetic(xPath, { rows: ROWS, dIn: D_IN, scale: 4, seed: 3 })).data;
  engine = await defaultEngine();
});
afterAll(() => tmp.cleanup());

/** An engine that aborts `controller` once it has run `calls` GEMMs — a deterministic point mid-training. */
function abortingEngine(inner: GemmEngine, calls: number, controller: AbortController): GemmEngine {
  let n = 0;
  return {
    name: `${inner.name}+abort`,
    gemm(a, b, opts) {
      if (++n === calls) controller.abort();
      return inner.gemm(a, b, opts);
    },
  };
}

const base = (arch: 'topk' | 'jumprelu' | 'gated', out: string) => ({
  arch,
  activations: xPath,
  out,
  dSae: D_SAE,
  steps: 30,
  batch: 32,
  evalRows: EVAL_ROWS,
  checkpointEvery: 7,
  bufferRows: 256, // smaller than the data, so the shuffle buffer refills (and its position must resume too)
  quiet: true,
  ...(arch === 'topk' ? { k: 3, deadTokens: 64 } : {}),
});

describe.each(['topk', 'jumprelu', 'gated'] as const)('resume (%s)', (arch) => {
  it('abort + rerun gives bit-identical weights to an uninterrupted run', async () => {
    const full = await trainSae(base(arch, join(tmp.dir, `${arch}-full`)), { engine });
    expect(full.interrupted).toBe(false);
    expect(full.steps).toBe(30);

    const outB = join(tmp.dir, `${arch}-resumed`);
    const controller = new AbortController();
    const cut = await trainSae(base(arch, outB), { engine: abortingEngine(engine, 60, controller), signal: controller.signal });
    expect(cut.interrupted).toBe(true);
    expect(cut.steps).toBeGreaterThan(0);
    expect(cut.steps).toBeLessThan(30);
    const state = await loadTrainingState(statePathFor(outB));
    expect(state.step).toBe(cut.steps);
    await expect(stat(join(outB, 'sae_weights.safetensors'))).rejects.toThrow(); // no folder for an interrupted run

    const done = await trainSae(base(arch, outB), { engine });
    expect(done.interrupted).toBe(false);
    expect(done.steps).toBe(30);
    await expect(stat(statePathFor(outB))).rejects.toThrow(); // the state is removed once the folder is written
    const a = await readFile(join(tmp.dir, `${arch}-full`, 'sae_weights.safetensors'));
    const b = await readFile(join(outB, 'sae_weights.safetensors'));
    expect(b.equals(a)).toBe(true);
  });
});

describe('stale training state', () => {
  it('is refused with an error naming the state file', async () => {
    const out = join(tmp.dir, 'stale');
    const controller = new AbortController();
    const cut = await trainSae(base('topk', out), { engine: abortingEngine(engine, 20, controller), signal: controller.signal });
    expect(cut.interrupted).toBe(true);
    // same --out, another configuration (seed): must not silently continue the old run
    await expect(trainSae({ ...base('topk', out), seed: 7 }, { engine })).rejects.toThrow(
      new RegExp(`${statePathFor(out).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} holds a training state for a different configuration`),
    );
    await expect(trainSae({ ...base('topk', out), k: 4 }, { engine })).rejects.toThrow(/different configuration; delete it/);
  });
});

describe('normalisation folding (--normalize auto)', () => {
  it.each(['jumprelu', 'topk', 'gated'] as const)('%s: folded weights on raw x = training weights on x / C', async (arch) => {
    // Interrupt: the state holds the training-space weights; the returned metrics come from the folded weights on
    // the raw held-out rows. Recompute them in float64 from the training weights on x / C, rescaling x̂ by C.
    const out = join(tmp.dir, `fold-${arch}`);
    const controller = new AbortController();
    const r = await trainSae({ ...base(arch, out), normalize: 'auto' }, { engine: abortingEngine(engine, 80, controller), signal: controller.signal });
    expect(r.interrupted).toBe(true);
    const C = r.normScale;
    expect(C).toBeGreaterThan(1.5); // the data are scaled by 4

    // E‖x/C‖² ≈ 1 on the training rows (C was estimated on a sample of them)
    let sq = 0;
    const trainRows = ROWS - EVAL_ROWS;
    for (let i = 0; i < trainRows * D_IN; i++) sq += x[i]! ** 2;
    expect(sq / trainRows / C ** 2).toBeGreaterThan(0.9);
    expect(sq / trainRows / C ** 2).toBeLessThan(1.1);

    const { params } = await loadTrainingState(statePathFor(out));
    const p = toP64(params);
    const held = x.subarray(trainRows * D_IN);
    const heldScaled = Float64Array.from(held, (v) => v / C);
    const saelens = { topk: 'topk', jumprelu: 'jumprelu', gated: 'gated' } as const;
    const { f } = encode64(saelens[arch], p, heldScaled, EVAL_ROWS, D_IN, D_SAE, { k: 3 });
    const xHat = decode64(f, EVAL_ROWS, D_IN, D_SAE, p.W_dec!, p.b_dec!).map((v) => v * C);
    const want = metrics64(held, xHat, f, EVAL_ROWS, D_IN, D_SAE);
    expect(r.metrics!.l0.mean).toBeCloseTo(want.l0, 10);
    expect(Math.abs(r.metrics!.mse - want.mse) / want.mse).toBeLessThan(1e-4);
    expect(Math.abs(r.metrics!.fvu! - want.fvu) / want.fvu).toBeLessThan(1e-4);
  });
});
