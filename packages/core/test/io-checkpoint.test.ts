import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import type { Params } from '../src/tensor.js';
import { loadSaelensFolder, loadTrainingState, saveSaelensFolder, saveTrainingState, type TrainingState } from '../src/io/checkpoint.js';
import { decodeSafetensors, encodeSafetensors } from '../src/io/safetensors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'saelab-ckpt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function saeParams(rng: Rng, dIn: number, dSae: number): Params {
  const t = (shape: number[]) => ({ data: rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1))), shape });
  return { W_enc: t([dIn, dSae]), W_dec: t([dSae, dIn]), b_enc: t([dSae]), b_dec: t([dIn]), threshold: t([dSae]) };
}
const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
function expectParamsBitEqual(a: Params, b: Params): void {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const k of Object.keys(a)) {
    expect(a[k]!.shape).toEqual(b[k]!.shape);
    expect(bits(a[k]!.data)).toEqual(bits(b[k]!.data));
  }
}

describe('SAELens folders', () => {
  const cfg = { architecture: 'jumprelu', d_in: 6, d_sae: 10, apply_b_dec_to_input: true, normalize_activations: 'none', dtype: 'float32', provenance: { seed: 1 } };

  it('round-trips bit-exactly and keeps cfg.json whole', async () => {
    const params = saeParams(new Rng(1), 6, 10);
    const out = join(dir, 'sae');
    await saveSaelensFolder(out, { params, cfg });
    expect((await readdir(out)).sort()).toEqual(['cfg.json', 'sae_weights.safetensors']);
    const back = await loadSaelensFolder(out);
    expectParamsBitEqual(back.params, params);
    expect(back.cfg).toEqual(cfg);
    expect(JSON.parse(await readFile(join(out, 'cfg.json'), 'utf8'))).toEqual(cfg);
    // The weights file is plain float32 safetensors with SAELens's tensor names.
    const raw = decodeSafetensors(await readFile(join(out, 'sae_weights.safetensors')));
    expect(Object.keys(raw.tensors).sort()).toEqual(['W_dec', 'W_enc', 'b_dec', 'b_enc', 'threshold']);
    // Saving again replaces the folder (no leftovers, no temp siblings).
    await saveSaelensFolder(out, { params: saeParams(new Rng(2), 6, 10), cfg });
    expect((await readdir(dir)).filter((n) => n.startsWith('sae'))).toEqual(['sae']);
  });

  it('explains what is wrong with a bad folder', async () => {
    const params = saeParams(new Rng(3), 6, 10);
    await expect(loadSaelensFolder(join(dir, 'nothing'))).rejects.toThrow(/no such folder/);
    const d1 = join(dir, 'no-weights');
    await mkdir(d1);
    await writeFile(join(d1, 'cfg.json'), JSON.stringify(cfg));
    await expect(loadSaelensFolder(d1)).rejects.toThrow(/missing sae_weights\.safetensors/);
    const d2 = join(dir, 'no-cfg');
    await mkdir(d2);
    await writeFile(join(d2, 'sae_weights.safetensors'), encodeSafetensors(params));
    await expect(loadSaelensFolder(d2)).rejects.toThrow(/missing cfg\.json/);
    await writeFile(join(d2, 'cfg.json'), '{"d_in": 6,');
    await expect(loadSaelensFolder(d2)).rejects.toThrow(/cfg\.json: invalid JSON/);
    await writeFile(join(d2, 'cfg.json'), JSON.stringify({ ...cfg, d_sae: 'ten' }));
    await expect(loadSaelensFolder(d2)).rejects.toThrow(/cfg field 'd_sae' is invalid/);
    await writeFile(join(d2, 'cfg.json'), JSON.stringify({ ...cfg, d_sae: 12 }));
    await expect(loadSaelensFolder(d2)).rejects.toThrow(/tensor 'W_dec' has shape \[10, 6\] but cfg d_in=6, d_sae=12 needs \[12, 6\]/);
    await writeFile(join(d2, 'cfg.json'), JSON.stringify(cfg));
    await writeFile(join(d2, 'sae_weights.safetensors'), encodeSafetensors(params).subarray(0, 200));
    await expect(loadSaelensFolder(d2)).rejects.toThrow(/sae_weights\.safetensors: .*(truncated|out of range)/);
    const { W_dec: _omit, ...noDec } = params;
    await expect(saveSaelensFolder(join(dir, 'x'), { params: noDec, cfg })).rejects.toThrow(/missing tensor 'W_dec'/);
    const nan = { ...params, b_dec: { data: new Float32Array(6).fill(Number.NaN), shape: [6] } };
    await expect(saveSaelensFolder(join(dir, 'x'), { params: nan, cfg })).rejects.toThrow(/b_dec: non-finite value NaN/);
    await expect(readdir(join(dir, 'x'))).rejects.toThrow(/ENOENT/);
  });
});

describe('training state', () => {
  it('round-trips params, optimizer slots and JSON (with NaN/Inf) exactly', async () => {
    const rng = new Rng(4);
    const params = saeParams(rng, 3, 5);
    params['layer.0.weight'] = { data: Float32Array.of(1, 2), shape: [2] }; // dotted names survive
    const rngState = new Rng(9);
    rngState.normal(); // leaves a cached spare normal
    const plain = new Rng(10); // no spare: its state holds NaN, which plain JSON would turn into null
    const state: TrainingState = {
      step: 1234,
      params,
      optimizer: { step: 1234, slots: { exp_avg: saeParams(rng, 3, 5), exp_avg_sq: saeParams(rng, 3, 5) } },
      json: { rng: rngState.getState(), plainRng: plain.getState(), stream: { epoch: 2, offset: 17 }, lr: 3e-4, bad: [Infinity, -Infinity] },
    };
    const p = join(dir, 'state.safetensors');
    await saveTrainingState(p, state);
    const back = await loadTrainingState(p);
    expect(back.step).toBe(1234);
    expect(back.optimizer.step).toBe(1234);
    expectParamsBitEqual(back.params, state.params);
    expect(Object.keys(back.optimizer.slots).sort()).toEqual(['exp_avg', 'exp_avg_sq']);
    for (const s of ['exp_avg', 'exp_avg_sq']) expectParamsBitEqual(back.optimizer.slots[s]!, state.optimizer.slots[s]!);
    expect(back.json).toEqual(state.json);
    // Restored generators continue identically.
    const r1 = new Rng(0);
    r1.setState(back.json.plainRng as number[]);
    const r2 = new Rng(0);
    r2.setState(back.json.rng as number[]);
    expect([r1.normal(), r1.normal(), r2.normal()]).toEqual([plain.normal(), plain.normal(), rngState.normal()]);
    // An SGD optimizer without slots also round-trips.
    await saveTrainingState(p, { ...state, optimizer: { step: 0, slots: {} } });
    expect((await loadTrainingState(p)).optimizer).toEqual({ step: 0, slots: {} });
  });

  it('rejects foreign or damaged files', async () => {
    const p = join(dir, 'other.safetensors');
    await writeFile(p, encodeSafetensors({ a: { data: Float32Array.of(1), shape: [1] } }, { format: 'pt' }));
    await expect(loadTrainingState(p)).rejects.toThrow(/not a saelab training-state file/);
    await expect(saveTrainingState(p, { step: -1, params: {}, optimizer: { step: 0, slots: {} }, json: {} })).rejects.toThrow(/step must be a non-negative integer/);
    await expect(saveTrainingState(p, { step: 1, params: {}, optimizer: { step: 0, slots: { 'a.b': {} } }, json: {} })).rejects.toThrow(/slot name 'a.b'/);
  });
});
