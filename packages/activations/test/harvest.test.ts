import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng, type Tensor, jsEngine, zeros } from '@saelab/core';
import { encodeLlama2cCheckpoint, randomLlama2cCheckpoint } from '../src/llama2c/checkpoint.js';
import { Llama2cModel } from '../src/llama2c/model.js';
import { corpusWindows, harvest } from '../src/harvest.js';
import { openActivationStore, readManifest } from '../src/store.js';
import { loadCorpora } from '../src/corpora.js';
import { createTokenizer } from '../src/tokenizers.js';
import { spliceCrossEntropy, spliceCrossEntropyWindows } from '../src/splice.js';
import { buildTinyOnnxLm, haveStories, smallTokenizer, stories } from './helpers.js';

/** A random llama2.c checkpoint plus a self-built tokenizer, written to a temp folder. */
function fixture() {
  const dir = mkdtempSync(join(tmpdir(), 'harvest-'));
  const tok = smallTokenizer(2);
  const ck = randomLlama2cCheckpoint({ dim: 8, hiddenDim: 12, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: tok.vocabSize, seqLen: 32, sharedClassifier: true }, 4);
  writeFileSync(join(dir, 'model.bin'), encodeLlama2cCheckpoint(ck));
  writeFileSync(join(dir, 'tok.bin'), tok.toBytes());
  return { dir, ck, model: join(dir, 'model.bin'), tokenizer: `llama2c:${join(dir, 'tok.bin')}` };
}

describe('harvest', () => {
  const fx = fixture();
  const base = { source: `llama2c:${fx.model}`, site: 'blocks.1.hook_resid_pre', corpus: 'brown', split: 'validation' as const, contextLength: 16, batchSize: 4 };

  it('stores exactly the model activations at non-BOS positions, with a manifest', async () => {
    const out = join(fx.dir, 'a');
    const progress: number[] = [];
    const m = await harvest({ ...base, tokens: 1000, out, shardRows: 300 }, (p) => progress.push(p.rows));
    expect(m.rows).toBe(1000);
    expect(m.complete).toBe(true);
    expect(m.tokenizer).toBe(fx.tokenizer); // found beside the checkpoint
    expect(m.d).toBe(8);
    expect(progress.at(-1)).toBe(1000);
    // Recompute the first window by hand: BOS + the first 15 tokens of the first validation document.
    const tok = createTokenizer(fx.tokenizer);
    const doc = loadCorpora('brown', 'validation')[0]!;
    const window = Int32Array.from([1, ...tok.encode(doc.text).slice(0, 15)]);
    const { acts } = await new Llama2cModel(fx.ck, { engine: jsEngine }).run(window, 1, 16, { read: [base.site] });
    const store = openActivationStore(out);
    const rows = await store.readRows(0, 15);
    await store.close();
    const expected = acts[base.site]!.data.subarray(8); // positions 1..15; BOS row excluded
    for (let i = 0; i < rows.length; i++) expect(Math.abs(rows[i]! - expected[i]!)).toBeLessThan(1e-5);
  });

  it('an interrupted harvest resumes to byte-identical shards', async () => {
    const full = await harvest({ ...base, tokens: 1500, out: join(fx.dir, 'full'), shardRows: 200 });
    const out = join(fx.dir, 'interrupted');
    let calls = 0;
    await expect(
      harvest({ ...base, tokens: 1500, out, shardRows: 200 }, (p) => {
        if (++calls === 1 || p.shards < 3) return;
        throw new Error('interrupted');
      }),
    ).rejects.toThrow('interrupted');
    const partial = readManifest(out);
    expect(partial.complete).toBe(false);
    expect(partial.shards.length).toBeGreaterThan(0);
    expect(partial.rows).toBeLessThan(1500);
    const resumed = await harvest({ ...base, tokens: 1500, out, shardRows: 200 });
    expect(resumed.rows).toBe(1500);
    expect(resumed.shards.map((s) => s.sha256)).toEqual(full.shards.map((s) => s.sha256));
    expect(resumed.scale!.C).toBeCloseTo(full.scale!.C, 10);
    await expect(harvest({ ...base, site: 'blocks.0.hook_mlp_out', tokens: 1500, out })).rejects.toThrow(/different settings/);
  });

  it('harvests from an ONNX model through a named output', async () => {
    const tok = smallTokenizer(2);
    const onnxPath = join(fx.dir, 'tiny.onnx');
    const m = buildTinyOnnxLm(tok.vocabSize, 6, 1);
    writeFileSync(onnxPath, m.bytes);
    const manifest = await harvest({
      source: `onnx:${onnxPath}`,
      tokenizer: fx.tokenizer,
      site: 'blocks.0.hook_resid_post',
      onnx: { sites: { 'blocks.0.hook_resid_post': 'hidden_1' } },
      corpus: 'sotu',
      split: 'test',
      tokens: 500,
      contextLength: 12,
      out: join(fx.dir, 'onnx'),
    });
    expect(manifest.rows).toBe(500);
    expect(manifest.d).toBe(6);
    const store = openActivationStore(join(fx.dir, 'onnx'));
    const rows = await store.readRows(0, 500);
    await store.close();
    for (const v of rows) expect(Math.abs(v)).toBeLessThanOrEqual(1); // tanh outputs
  });
});

describe('spliceCrossEntropy', () => {
  const fx = fixture();
  const lm = new Llama2cModel(fx.ck, { engine: jsEngine });
  const rng = new Rng(2);
  const tokens = Int32Array.from({ length: 2 * 16 }, (_, i) => (i % 16 === 0 ? 1 : 3 + rng.int(lm.info.vocabSize - 3)));
  const site = 'blocks.1.hook_resid_pre';

  it('identity gives the clean CE, zeros give CE_zero, noise lies in between', async () => {
    const id = await spliceCrossEntropy(lm, tokens, 2, 16, site, (x) => x);
    expect(id.ceSpliced).toBe(id.ceClean);
    expect(id.ceRecovered).toBe(1);
    const zero = await spliceCrossEntropy(lm, tokens, 2, 16, site, (x) => zeros(x.shape));
    expect(zero.ceSpliced).toBe(zero.ceZero);
    expect(zero.ceZero).not.toBe(zero.ceClean);
    await expect(spliceCrossEntropy(lm, tokens, 2, 16, site, () => zeros([1, 8]))).rejects.toThrow(/expected \[30, 8\]/);
  });

  it('over windows: per-token means of per-window runs, whatever the batching (partial last batch), and a cached baseline changes nothing', async () => {
    const n = 7;
    const many = Int32Array.from({ length: n * 16 }, (_, i) => (i % 16 === 0 ? 1 : 3 + rng.int(lm.info.vocabSize - 3)));
    const noisy = (x: Tensor) => ({ data: x.data.map((v) => 0.7 * v + 0.1), shape: x.shape }); // row-wise, so batching cannot matter
    const one = await Promise.all(
      Array.from({ length: n }, (_, w) => spliceCrossEntropy(lm, many.subarray(w * 16, (w + 1) * 16), 1, 16, site, noisy)),
    );
    const mean = (k: 'ceClean' | 'ceSpliced' | 'ceZero') => one.reduce((s, r) => s + r[k], 0) / n;
    const baselines = new Map();
    for (const batchWindows of [3, 7, 3]) {
      const r = await spliceCrossEntropyWindows(lm, { tokens: many, batch: n, seqLen: 16 }, site, noisy, { batchWindows, baselines });
      expect(r.windows).toBe(n);
      expect(r.tokens).toBe(n * 15);
      for (const k of ['ceClean', 'ceSpliced', 'ceZero'] as const) expect(r[k], `${k} (batches of ${batchWindows})`).toBeCloseTo(mean(k), 5);
    }
    expect([...baselines.keys()]).toEqual([`${site}|7x16|3`, `${site}|7x16|7`]); // the second batches-of-3 call reused the first's
    await expect(spliceCrossEntropyWindows(lm, { tokens: many, batch: 0, seqLen: 16 }, site, noisy)).rejects.toThrow(/no windows/);
  });

  it.skipIf(!haveStories)('on stories260K, a noisy reconstruction costs loss and recovers less than all of it', async () => {
    const model = Llama2cModel.load(join(stories, 'stories260K.bin'));
    const tok = createTokenizer(`llama2c:${join(stories, 'tok512.bin')}`, 512);
    const text = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog.';
    const ids = Int32Array.from([1, ...tok.encode(text)].slice(0, 24));
    const noise = new Rng(5);
    const r = await spliceCrossEntropy(model, ids, 1, ids.length, 'blocks.2.hook_resid_post', (x) => ({
      data: x.data.map((v) => v + 0.5 * noise.normal()),
      shape: x.shape,
    }));
    expect(r.ceClean).toBeLessThan(r.ceZero);
    expect(r.deltaLoss).toBeGreaterThan(0);
    expect(r.ceRecovered).toBeGreaterThan(0);
    expect(r.ceRecovered).toBeLessThan(1);
    expect(readFileSync(join(stories, 'greedy-200.txt')).length).toBeGreaterThan(0);
  });
});

describe('corpusWindows', () => {
  it('returns full BOS-led windows of the split, as the harvest cuts them', () => {
    const fx = fixture();
    const tok = createTokenizer(fx.tokenizer);
    const { tokens, batch, seqLen } = corpusWindows({ corpus: 'brown', split: 'test', tokenizer: tok, contextLength: 10, count: 5 });
    expect([batch, seqLen]).toEqual([5, 10]);
    const first = tok.encode(loadCorpora('brown', 'test')[0]!.text);
    expect(Array.from(tokens.subarray(0, 10))).toEqual([1, ...first.slice(0, 9)]);
    expect(Array.from(tokens.subarray(10, 20))).toEqual([1, ...first.slice(9, 18)]);
  });
});
