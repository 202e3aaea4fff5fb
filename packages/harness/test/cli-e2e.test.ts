/**
 * End to end through the CLI: train each architecture for a few steps, then eval / encode / reconstruct the folder,
 * checking the outputs against float64 recomputations from the saved weights and the .npy files read back.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readNpyFile, readSafetensorsFile, writeNpyFile } from '@saelab/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, cli, decode64, encode64, maxRelErr, metrics64, tempDir, toP64, writeSynthetic } from './util.js';

const D_IN = 12;
const D_SAE = 24;
const ROWS = 1200;
const EVAL_ROWS = 100;
const SAELENS_ARCH = { relu: 'standard', gated: 'gated', topk: 'topk', jumprelu: 'jumprelu' } as const;

let tmp: Awaited<ReturnType<typeof tempDir>>;
let xPath: string;
let tailPath: string;
let x: Float32Array;

beforeAll(async () => {
  tmp = await tempDir('e2e');
  xPath = join(tmp.dir, 'x.npy');
  x = (await writeSynthetic(xPath, { rows: ROWS, dIn: D_IN, scale: 3 })).data;
  // The held-out tail train uses for cfg.json metrics, as its own file.
  tailPath = join(tmp.dir, 'tail.npy');
  await writeNpyFile(tailPath, { data: x.slice((ROWS - EVAL_ROWS) * D_IN), shape: [EVAL_ROWS, D_IN] });
});
afterAll(() => tmp.cleanup());

describe.each(['relu', 'gated', 'topk', 'jumprelu'] as const)('saelab train/eval/encode/reconstruct --arch %s', (arch) => {
  it('writes an SAELens folder whose outputs agree with a float64 recomputation', async () => {
    const out = join(tmp.dir, arch);
    const extra = arch === 'topk' ? ['--k', '4'] : [];
    const t = await cli('train', '--arch', arch, '--activations', xPath, '--out', out, '--d-sae', String(D_SAE), '--steps', '12', '--batch', '64', '--eval-rows', String(EVAL_ROWS), '--quiet', ...extra);
    expect(t.stderr).toContain(`wrote ${out}`);
    expect(t.code).toBe(0);

    const cfg = JSON.parse(await readFile(join(out, 'cfg.json'), 'utf8'));
    expect(cfg).toMatchObject({ architecture: SAELENS_ARCH[arch], d_in: D_IN, d_sae: D_SAE, normalize_activations: 'none', dtype: 'float32', apply_b_dec_to_input: true });
    if (arch === 'topk') expect(cfg.k).toBe(4);
    expect(cfg.saelab.metrics.rows).toBe(EVAL_ROWS);
    expect(cfg.saelab.steps).toBe(12);
    expect(cfg.saelab.norm_scale).toBeGreaterThan(1); // the data were scaled up, so C > 1 was folded in

    const { tensors } = await readSafetensorsFile(join(out, 'sae_weights.safetensors'));
    const expected = { relu: ['W_enc', 'b_enc', 'W_dec', 'b_dec'], gated: ['W_enc', 'b_gate', 'r_mag', 'b_mag', 'W_dec', 'b_dec'], topk: ['W_enc', 'b_enc', 'W_dec', 'b_dec'], jumprelu: ['W_enc', 'b_enc', 'W_dec', 'b_dec', 'threshold'] }[arch];
    expect(Object.keys(tensors).sort()).toEqual([...expected].sort());
    expect(tensors.W_enc!.shape).toEqual([D_IN, D_SAE]);
    expect(tensors.W_dec!.shape).toEqual([D_SAE, D_IN]);
    const p = toP64(tensors);

    // encode / reconstruct through the CLI, read back
    const fPath = join(tmp.dir, `${arch}-f.npy`);
    const xhPath = join(tmp.dir, `${arch}-xhat.npy`);
    expect((await cli('encode', '--sae', out, '--activations', xPath, '--out', fPath, '--batch', '500')).code).toBe(0);
    expect((await cli('reconstruct', '--sae', out, '--activations', xPath, '--out', xhPath, '--batch', '333')).code).toBe(0);
    const f = await readNpyFile(fPath);
    const xHat = await readNpyFile(xhPath);
    expect(f.shape).toEqual([ROWS, D_SAE]);
    expect(xHat.shape).toEqual([ROWS, D_IN]);

    // latents = SAELens's forward in float64 on the saved weights; x̂ = f W_dec + b_dec
    const ref = encode64(SAELENS_ARCH[arch], p, x, ROWS, D_IN, D_SAE, { k: 4 });
    const fe = maxRelErr(f.data, ref.f, { margin: ref.margin, minMargin: 1e-4 });
    expect(fe.err).toBeLessThan(1e-5);
    expect(fe.skipped).toBeLessThan(ROWS * D_SAE * 0.001);
    expect(maxRelErr(xHat.data, decode64(f.data, ROWS, D_IN, D_SAE, p.W_dec!, p.b_dec!)).err).toBeLessThan(1e-5);

    // eval --json agrees with MSE / FVU / L0 computed from those files
    const e = await cli('eval', '--sae', out, '--activations', xPath, '--json');
    expect(e.code).toBe(0);
    const m = JSON.parse(e.stdout);
    const want = metrics64(x, xHat.data, f.data, ROWS, D_IN, D_SAE);
    expect(m.rows).toBe(ROWS);
    expect(m.l0.mean).toBeCloseTo(want.l0, 10);
    expect(Math.abs(m.mse - want.mse) / want.mse).toBeLessThan(1e-5);
    expect(Math.abs(m.fvu - want.fvu) / want.fvu).toBeLessThan(1e-5);
    expect(m.explainedVariance).toBeCloseTo(1 - m.fvu, 12);

    // cfg.json's metrics are the held-out tail's: the same as eval on that tail alone
    const tail = JSON.parse((await cli('eval', '--sae', out, '--activations', tailPath, '--json')).stdout);
    expect(tail.l0.mean).toBeCloseTo(cfg.saelab.metrics.l0.mean, 10);
    expect(Math.abs(tail.mse - cfg.saelab.metrics.mse) / tail.mse).toBeLessThan(1e-6);
  });
});

describe('the real binary', () => {
  it('trains a TopK SAE to FVU < 1 and prints parsable eval --json', async () => {
    const out = join(tmp.dir, 'bin-topk');
    const t = await bin('train', '--arch', 'topk', '--k', '4', '--activations', xPath, '--out', out, '--d-sae', String(D_SAE), '--steps', '150', '--batch', '128', '--lr', '0.01', '--quiet');
    expect(t.stderr).toMatch(/wrote .*bin-topk: 150 steps/);
    expect(t.code).toBe(0);
    const e = await bin('eval', '--sae', out, '--activations', xPath, '--json');
    expect(e.code).toBe(0);
    const m = JSON.parse(e.stdout);
    expect(m.l0.mean).toBeLessThanOrEqual(4);
    // trained on x/C, evaluated on raw x through the folded weights: still a good reconstruction
    expect(m.fvu).toBeLessThan(0.5);
    const human = await bin('eval', '--sae', out, '--activations', xPath);
    expect(human.stdout).toMatch(/^FVU\s+[0-9.e-]+$/m);
    expect(human.stdout).toMatch(/^dead fraction\s+[0-9.]+$/m);
  });
});

describe('--eval-rows 0', () => {
  it('trains on every row, writes the folder without held-out metrics, and says so', async () => {
    const out = join(tmp.dir, 'no-eval');
    const t = await cli('train', '--arch', 'relu', '--activations', xPath, '--out', out, '--d-sae', String(D_SAE), '--steps', '5', '--batch', '64', '--eval-rows', '0', '--quiet');
    expect(t.code).toBe(0);
    expect(t.stderr).toMatch(/wrote .*no-eval: 5 steps, .*no held-out rows \(--eval-rows 0\): no metrics/);
    const cfg = JSON.parse(await readFile(join(out, 'cfg.json'), 'utf8'));
    expect(cfg.saelab.metrics).toBeNull();
    expect(cfg.saelab.config.evalRows).toBe(0);
  });
});
