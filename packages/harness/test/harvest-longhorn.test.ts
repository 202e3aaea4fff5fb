/**
 * `saelab harvest --source longhorn:DIR`: a Longhorn LM folder is an activation source like any other LM; and
 * `saelab eval --lm` splices an SAE's x̂ back into it (ΔLM loss, CE recovered).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Rng, saveSae } from '@saelab/core';
import { topK } from '@saelab/sae-topk';
import { gpt2Tokenizer, loadCorpus, openActivationStore } from '@saelab/activations';
import { LonghornLM, buildVocab, saveModel, saveVocab } from '@saelab/ssm-longhorn';
import { main } from '../src/cli.js';
import { cli } from './util.js';

const dir = mkdtempSync(join(tmpdir(), 'saelab-harvest-lh-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('harvests the residual stream of a Longhorn LM folder (restricted GPT-2 vocabulary) into a valid store', async () => {
  const gpt2 = gpt2Tokenizer();
  const text = loadCorpus('sotu', 'train').slice(0, 3).map((d) => d.text).join('\n');
  const vocab = buildVocab(gpt2.name, gpt2.encode(text), 300);
  const modelDir = join(dir, 'lm');
  const lm = LonghornLM.create({ vocabSize: 300, dModel: 16, nLayers: 2, dState: 4 }, 3);
  await saveModel(modelDir, lm);
  await saveVocab(modelDir, vocab);

  const out = join(dir, 'store');
  const argv = ['node', 'saelab', 'harvest', '--source', `longhorn:${modelDir}`, '--site', 'blocks.0.hook_resid_post', '--tokens', '500', '--out', out, '--corpus', 'sotu', '--context', '32', '--batch', '4'];
  await main(argv);
  expect(process.exitCode ?? 0).toBe(0);
  const store = openActivationStore(out);
  expect(store.manifest.site).toBe('blocks.0.hook_resid_post');
  expect(store.d).toBe(16);
  expect(store.rows).toBeGreaterThanOrEqual(500);
  const rows = await store.readRows(0, store.rows);
  expect(rows.every(Number.isFinite)).toBe(true);
  expect(rows.some((v) => v !== 0)).toBe(true);
  await store.close();
});

/**
 * Two SAEs whose spliced cross-entropy is known without running them: an exact one (TopK with k = d over the
 * latents [x⁺, x⁻] = ReLU([x, −x]), decoded by [I; −I], so x̂ = x) must give ΔLM loss 0 and CE recovered 1, and
 * one that always outputs 0 must give CE_SAE = CE_zero, CE recovered 0. The store's site is picked up from the
 * store (the SAE folders name none).
 */
it('eval --lm splices x̂ into the Longhorn LM: exact SAE → ΔLM 0 / CE recovered 1, zero SAE → CE recovered 0', async () => {
  const d = 16;
  const cfg = topK.configSchema.parse({ dIn: d, dSae: 2 * d, k: d });
  const exact = topK.init(cfg, new Rng(0));
  const zero = topK.init(cfg, new Rng(0));
  for (const p of [exact, zero]) for (const t of Object.values(p)) t.data.fill(0);
  for (let i = 0; i < d; i++) {
    exact.W_enc!.data[i * 2 * d + i] = 1; // latent i = x_i
    exact.W_enc!.data[i * 2 * d + d + i] = -1; // latent d + i = −x_i
    exact.W_dec!.data[i * d + i] = 1;
    exact.W_dec!.data[(d + i) * d + i] = -1;
  }
  await saveSae(join(dir, 'sae-exact'), topK, cfg, exact);
  await saveSae(join(dir, 'sae-zero'), topK, cfg, zero);
  const evalLm = async (sae: string) => {
    const r = await cli('eval', '--sae', join(dir, sae), '--activations', join(dir, 'store'), '--lm', `longhorn:${join(dir, 'lm')}`, '--corpus', 'sotu', '--context', '32', '--lm-windows', '8', '--json');
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout).lm as { site: string; ceClean: number; ceSpliced: number; ceZero: number; deltaLoss: number; ceRecovered: number; tokens: number };
  };
  const e = await evalLm('sae-exact');
  expect(e.site).toBe('blocks.0.hook_resid_post');
  expect(e.tokens).toBe(8 * 31);
  expect(Math.abs(e.ceZero - e.ceClean)).toBeGreaterThan(1e-3); // zero-ablation must cost something for the ratio to mean anything
  expect(Math.abs(e.deltaLoss)).toBeLessThan(1e-5);
  expect(e.ceRecovered).toBeCloseTo(1, 4);
  const z = await evalLm('sae-zero');
  expect(z.ceClean).toBe(e.ceClean);
  expect(z.ceSpliced).toBeCloseTo(z.ceZero, 5);
  expect(z.ceRecovered).toBeCloseTo(0, 4);
});
