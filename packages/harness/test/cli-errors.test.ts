/** Bad input gives a clear, specific error (exit code 1, message naming the problem) — never a silent NaN. */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeSafetensors, writeNpyFile } from '@saelab/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, cli, tempDir, writeSynthetic } from './util.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let xPath: string;
let sae16: string;

beforeAll(async () => {
  tmp = await tempDir('errors');
  xPath = join(tmp.dir, 'x.npy');
  await writeSynthetic(xPath, { rows: 300, dIn: 16 });
  sae16 = join(tmp.dir, 'sae16');
  const t = await cli('train', '--arch', 'relu', '--activations', xPath, '--out', sae16, '--d-sae', '8', '--steps', '2', '--batch', '32', '--quiet');
  expect(t.code).toBe(0);
});
afterAll(() => tmp.cleanup());

const train = (...more: string[]) => cli('train', '--activations', xPath, '--out', join(tmp.dir, 'never'), '--steps', '2', '--batch', '32', '--quiet', ...more);

describe('saelab train: flags', () => {
  it('unknown --arch', async () => {
    const r = await train('--arch', 'sparsemax');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--arch <name>' argument 'sparsemax' is invalid\. Allowed choices are relu, gated, topk, batchtopk, jumprelu/);
  });
  it('--k with relu', async () => {
    const r = await train('--arch', 'relu', '--k', '4');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--k: --k applies only to --arch topk,? (or )?batchtopk\b[^,]*(, \w+)*( or \w+)?, not relu/);
  });
  it('--sparsity with topk', async () => {
    const r = await train('--arch', 'topk', '--sparsity', '0.1');
    expect(r.stderr).toMatch(/topk is controlled by --k, not --sparsity/);
  });
  it('--k larger than the dictionary: one line naming the field, not a raw zod list', async () => {
    const r = await train('--arch', 'topk', '--k', '400', '--d-sae', '64');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^saelab: invalid topk config: k = 400: k must be at most d_sae$/m);
    expect(r.stderr).not.toMatch(/"code"|\[\s*\{/);
  });
  it('both --steps and --tokens', async () => {
    const r = await train('--arch', 'relu', '--tokens', '1000');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--steps: give --steps or --tokens, not both/);
  });
  it('both --d-sae and --expansion', async () => {
    const r = await train('--arch', 'relu', '--d-sae', '8', '--expansion', '2');
    expect(r.stderr).toMatch(/give --d-sae or --expansion, not both/);
  });
  it('non-numeric --lr, non-integer --batch, negative --lr', async () => {
    const a = await train('--arch', 'relu', '--lr', 'fast');
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/--lr must be a number, got 'fast'/);
    const b = await cli('train', '--arch', 'relu', '--activations', xPath, '--out', join(tmp.dir, 'never'), '--batch', '3.5');
    expect(b.stderr).toMatch(/--batch must be an integer, got '3\.5'/);
    const c = await train('--arch', 'relu', '--lr', '-1');
    expect(c.stderr).toMatch(/--lr: .*(>0|positive|greater than 0)/i);
  });
  it('missing required flags', async () => {
    const r = await cli('train', '--arch', 'relu');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/required option '--activations <file>' not specified/);
  });
  it('unknown command (real binary: non-zero exit, message on stderr)', async () => {
    const r = await bin('trian');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown command 'trian'/);
  });
});

describe('saelab: bad files', () => {
  it('missing activation file', async () => {
    const r = await train('--arch', 'relu', '--activations', join(tmp.dir, 'nope.npy'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nope\.npy: cannot open activation file \(ENOENT/);
  });
  it('.npy with a NaN row names the file and the row', async () => {
    const bad = join(tmp.dir, 'nan.npy');
    const data = new Float32Array(200 * 4).map((_, i) => Math.sin(i));
    data[57 * 4 + 2] = NaN;
    await writeNpyFile(bad, { data, shape: [200, 4] });
    const t = await cli('train', '--arch', 'relu', '--activations', bad, '--out', join(tmp.dir, 'nan-out'), '--steps', '3', '--batch', '16', '--quiet');
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/nan\.npy: row 57 contains NaN at column 2; NaN\/Inf activations are rejected/);
    const e = await cli('eval', '--sae', sae16, '--activations', bad);
    expect(e.code).toBe(1);
  });
  it('d mismatch between --init SAE and data, and between an SAE and eval/encode data', async () => {
    const x8 = join(tmp.dir, 'x8.npy');
    await writeSynthetic(x8, { rows: 100, dIn: 8 });
    const t = await cli('train', '--arch', 'relu', '--init', sae16, '--activations', x8, '--out', join(tmp.dir, 'init-out'), '--steps', '2', '--batch', '16', '--quiet');
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/--init SAE has d_in 16 but the activations have d = 8/);
    const wrongArch = await cli('train', '--arch', 'topk', '--init', sae16, '--activations', xPath, '--out', join(tmp.dir, 'init-out'), '--steps', '2', '--quiet');
    expect(wrongArch.stderr).toMatch(/holds a relu SAE but --arch is topk/);
    expect((await cli('eval', '--sae', sae16, '--activations', x8)).stderr).toMatch(/activations have d = 8 but the SAE's d_in is 16/);
    expect((await cli('encode', '--sae', sae16, '--activations', x8, '--out', join(tmp.dir, 'f.npy'))).stderr).toMatch(/has d = 8 but the SAE's d_in is 16/);
  });
  it('corrupt cfg.json', async () => {
    const dir = join(tmp.dir, 'corrupt');
    await mkdir(dir);
    await writeFile(join(dir, 'sae_weights.safetensors'), await readFile(join(sae16, 'sae_weights.safetensors')));
    await writeFile(join(dir, 'cfg.json'), '{"architecture": "standard", "d_in": 16,');
    const r = await cli('eval', '--sae', dir, '--activations', xPath);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/corrupt\/cfg\.json: invalid JSON/);
    await writeFile(join(dir, 'cfg.json'), JSON.stringify({ architecture: 'standard', d_in: 16, d_sae: 'eight' }));
    expect((await cli('eval', '--sae', dir, '--activations', xPath)).stderr).toMatch(/cfg field 'd_sae' is invalid/);
    await writeFile(join(dir, 'cfg.json'), JSON.stringify({ architecture: 'matryoshka', d_in: 16, d_sae: 8 }));
    expect((await cli('eval', '--sae', dir, '--activations', xPath)).stderr).toMatch(/architecture 'matryoshka' is not supported/);
    await writeFile(join(dir, 'cfg.json'), JSON.stringify({ architecture: 'standard', d_in: 16, d_sae: 8, normalize_activations: 'layer_norm' }));
    expect((await cli('eval', '--sae', dir, '--activations', xPath)).stderr).toMatch(/normalize_activations is 'layer_norm'/);
    await writeFile(join(dir, 'cfg.json'), JSON.stringify({ architecture: 'topk', d_in: 16, d_sae: 8 }));
    expect((await cli('eval', '--sae', dir, '--activations', xPath)).stderr).toMatch(/cfg\.json: invalid topk config: 'k': .*expected number/);
  });
  it('SAELens folder missing a tensor', async () => {
    const dir = join(tmp.dir, 'no-threshold');
    await mkdir(dir);
    const t = (shape: number[]) => ({ data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.1), shape });
    await writeFile(join(dir, 'sae_weights.safetensors'), encodeSafetensors({ W_enc: t([16, 8]), b_enc: t([8]), W_dec: t([8, 16]), b_dec: t([16]) }));
    await writeFile(join(dir, 'cfg.json'), JSON.stringify({ architecture: 'jumprelu', d_in: 16, d_sae: 8 }));
    const r = await cli('encode', '--sae', dir, '--activations', xPath, '--out', join(tmp.dir, 'g.npy'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/jumprelu SAE needs tensor 'threshold', which sae_weights\.safetensors lacks/);
    await writeFile(join(dir, 'cfg.json'), JSON.stringify({ architecture: 'gated', d_in: 16, d_sae: 8 }));
    expect((await cli('eval', '--sae', dir, '--activations', xPath)).stderr).toMatch(/gated SAE needs tensor 'b_gate'/);
    // a weight that is NaN is named, not propagated
    await writeFile(join(dir, 'sae_weights.safetensors'), encodeSafetensors({ W_enc: t([16, 8]), b_enc: { data: new Float32Array(8).fill(NaN), shape: [8] }, W_dec: t([8, 16]), b_dec: t([16]) }));
    await writeFile(join(dir, 'cfg.json'), JSON.stringify({ architecture: 'standard', d_in: 16, d_sae: 8 }));
    expect((await cli('eval', '--sae', dir, '--activations', xPath)).stderr).toMatch(/tensor 'b_enc': non-finite value NaN/);
  });
  it('--sae that is not a folder', async () => {
    expect((await cli('eval', '--sae', join(tmp.dir, 'missing-dir'), '--activations', xPath)).stderr).toMatch(/missing-dir: no such folder/);
  });
});
