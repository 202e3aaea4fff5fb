import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng, jsEngine } from '@saelab/core';
import { IGNORE, LonghornLM, TransformerLM, loadModel, mqarAccuracy, mqarBatch, mqarStream, saveModel, train } from '../src/index.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'longhorn-test-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('MQAR generator (Zoology layout)', () => {
  const cfg = { vocabSize: 40, seqLen: 32, numKvPairs: 4 };

  it('lays out key-value pairs, then each key once as a query scored with its value', () => {
    const { tokens, targets, batch, seqLen: L } = mqarBatch(cfg, 50, new Rng(1));
    expect(batch).toBe(50);
    for (let e = 0; e < batch; e++) {
      const row = Array.from(tokens.subarray(e * L, (e + 1) * L));
      const tgt = Array.from(targets.subarray(e * L, (e + 1) * L));
      const kv = new Map<number, number>();
      for (let i = 0; i < 4; i++) {
        const [k, v] = [row[2 * i]!, row[2 * i + 1]!];
        expect(k).toBeGreaterThanOrEqual(1);
        expect(k).toBeLessThan(20);
        expect(v).toBeGreaterThanOrEqual(20);
        expect(v).toBeLessThan(40);
        expect(kv.has(k)).toBe(false);
        kv.set(k, v);
      }
      expect(new Set(kv.values()).size).toBe(4);
      const queries: number[] = [];
      for (let t = 0; t < L; t++) {
        if (t < 8) expect(tgt[t]).toBe(IGNORE);
        else if (tgt[t] !== IGNORE) {
          expect((t - 8) % 2).toBe(0);
          expect(tgt[t]).toBe(kv.get(row[t]!));
          queries.push(row[t]!);
        } else expect(row[t]).toBe(0);
      }
      expect(queries.sort()).toEqual([...kv.keys()].sort());
    }
  });

  it('is deterministic per seed and draws short gaps more often than long ones (power law)', () => {
    expect(mqarBatch(cfg, 5, new Rng(3)).tokens).toEqual(mqarBatch(cfg, 5, new Rng(3)).tokens);
    const { targets } = mqarBatch(cfg, 2000, new Rng(4));
    const byGap = new Array(12).fill(0);
    for (let i = 0; i < targets.length; i++) if (targets[i] !== IGNORE) byGap[((i % 32) - 8) / 2]++;
    expect(byGap[0]).toBeGreaterThan(2 * byGap[11]);
  });

  it('rejects impossible configs', () => {
    expect(() => mqarBatch({ vocabSize: 40, seqLen: 31, numKvPairs: 4 }, 1, new Rng(0))).toThrow(/even/);
    expect(() => mqarBatch({ vocabSize: 40, seqLen: 32, numKvPairs: 9 }, 1, new Rng(0))).toThrow(/4·numKvPairs/);
    expect(() => mqarBatch({ vocabSize: 8, seqLen: 32, numKvPairs: 4 }, 1, new Rng(0))).toThrow(/fewer than 4 keys/);
  });
});

/**
 * With the synchronous jsEngine a training loop only ever awaits resolved promises, so vitest's worker could not
 * answer its RPC for the whole run (under load: "Timeout calling onTaskUpdate"); one macrotask turn per step lets it.
 */
const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

describe('training', () => {
  const task = { vocabSize: 24, seqLen: 16, numKvPairs: 2 };
  const model = { vocabSize: 24, dModel: 32, nLayers: 2, dState: 8 } as const;

  it('a tiny Longhorn learns MQAR well above chance in seconds', async () => {
    const lm = LonghornLM.create({ ...model, nLayers: 1 }, 0, jsEngine);
    const test = mqarBatch(task, 128, new Rng(99));
    const before = await mqarAccuracy(lm, test);
    await train(lm, { lr: 1e-2, totalSteps: 100, warmupSteps: 10 }, { data: mqarStream(task, 32, 1), onStep: yieldToEventLoop });
    const after = await mqarAccuracy(lm, test);
    const chance = 1 / 12; // values are uniform over [V/2, V)
    expect(after).toBeGreaterThan(Math.max(4 * chance, before + 0.2));
  });

  /**
   * The same easy case, the same recipe (1 layer, lr 1e-2, 100 steps × 32 examples) for every baseline: a model
   * that cannot learn it here would make the benchmark comparisons meaningless (issue 14: "a test that Mamba learns
   * an easy MQAR case, as Longhorn's does"). The other transitions (longhorn-exact, mamba2, deltanet, gated-deltanet)
   * pass it too (checked 2026-12-04); they are left out to keep the suite's time down.
   */
  it.each(['mamba', 'transformer'] as const)('a tiny %s learns the same MQAR case well above chance', async (variant) => {
    const lm = variant === 'transformer'
      ? TransformerLM.create({ vocabSize: 24, dModel: 32, nLayers: 1, nHeads: 1, mlpHidden: 32 }, 0, jsEngine)
      : LonghornLM.create({ ...model, nLayers: 1, variant, headDim: 8 }, 0, jsEngine);
    const test = mqarBatch(task, 128, new Rng(99));
    const before = await mqarAccuracy(lm, test);
    await train(lm, { lr: 1e-2, totalSteps: 100, warmupSteps: 10 }, { data: mqarStream(task, 32, 1), onStep: yieldToEventLoop });
    const after = await mqarAccuracy(lm, test);
    const chance = 1 / 12;
    expect(after, `${variant}: ${before} → ${after}`).toBeGreaterThan(Math.max(4 * chance, before + 0.2));
  });

  it('resuming from a checkpoint gives bit-identical weights to an uninterrupted run', async () => {
    const cfg = { lr: 5e-3, totalSteps: 6, warmupSteps: 2, checkpointEvery: 3 };
    const data = mqarStream(task, 4, 7);
    const straight = LonghornLM.create(model, 3, jsEngine);
    await train(straight, cfg, { data });
    const dir = tmp();
    const first = LonghornLM.create(model, 3, jsEngine);
    await train(first, cfg, { data, dir, onStep: (l) => l.step === 2 }); // stop after the step-3 checkpoint
    const resumed = LonghornLM.create(model, 3, jsEngine);
    const logs = await train(resumed, cfg, { data, dir });
    expect(logs[0]!.step).toBe(3);
    for (const [name, t] of Object.entries(straight.params)) expect(resumed.params[name]!.data, name).toEqual(t.data);
    // The same folder with another schedule is refused, naming what changed.
    await expect(train(LonghornLM.create(model, 3, jsEngine), { ...cfg, totalSteps: 12, lr: 1e-3 }, { data, dir })).rejects.toThrow(
      /other training settings \(lr: 0.005 → 0.001, totalSteps: 6 → 12\)/,
    );
  });

  it('a saved model folder loads back with identical logits and official names', async () => {
    const lm = LonghornLM.create({ ...model, variant: 'mamba' }, 5, jsEngine);
    const dir = tmp();
    await saveModel(dir, lm);
    const back = await loadModel(dir, jsEngine);
    expect(back.config).toEqual(lm.config);
    expect(Object.keys(back.params).sort()).toEqual(Object.keys(lm.params).sort());
    const tokens = mqarBatch(task, 2, new Rng(1)).tokens;
    expect((await back.forward(tokens, 2, 16)).logits!.data).toEqual((await lm.forward(tokens, 2, 16)).logits!.data);
    await expect(loadModel(join(dir, 'nope'))).rejects.toThrow(/missing config.json/);
  });
});

describe('restricted vocabulary', () => {
  // A character-level base tokenizer (code points as ids) keeps the test independent of any BPE table.
  const chars = {
    name: 'chars',
    vocabSize: 0x110000,
    bos: null,
    encode: (t: string) => Array.from(t, (c) => c.codePointAt(0)!),
    decode: (ids: ArrayLike<number>) => String.fromCodePoint(...Array.from(ids)),
  };

  it('keeps the most frequent tokens, maps the rest to <unk>, and round-trips known text', async () => {
    const { buildVocab, restrictTokenizer, saveVocab, loadVocab, UNK, EOT } = await import('../src/vocab.js');
    const vocab = buildVocab('chars', chars.encode('aaaabbbcc d'), 5); // keeps a, b, c
    expect(vocab.baseIds).toEqual([97, 98, 99]);
    const tok = restrictTokenizer(chars, vocab);
    expect(tok.vocabSize).toBe(5);
    expect(tok.bos).toBe(EOT);
    expect(tok.encode('abcz')).toEqual([2, 3, 4, UNK]);
    expect(tok.decode(tok.encode('cab'))).toBe('cab');
    const dir = tmp();
    await saveVocab(dir, vocab);
    expect(loadVocab(dir)).toEqual(vocab);
    expect(loadVocab(join(dir, 'none'))).toBeNull();
    expect(() => restrictTokenizer({ ...chars, name: 'gpt2' }, vocab)).toThrow(/built with 'chars'/);
  });
});
