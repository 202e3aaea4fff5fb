/** `saelab harvest --source longhorn:DIR`: a Longhorn LM folder is an activation source like any other LM. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { gpt2Tokenizer, loadCorpus, openActivationStore } from '@saelab/activations';
import { LonghornLM, buildVocab, saveModel, saveVocab } from '@saelab/ssm-longhorn';
import { main } from '../src/cli.js';

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
