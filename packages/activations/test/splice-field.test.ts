import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng, type Tensor, jsEngine, zeros } from '@saelab/core';
import { encodeLlama2cCheckpoint, randomLlama2cCheckpoint } from '../src/llama2c/checkpoint.js';
import { Llama2cModel } from '../src/llama2c/model.js';
import { spliceCrossEntropyWindows } from '../src/splice.js';
import { runMeans, windowedLmStats } from '../src/splice-field.js';
import { smallTokenizer } from './helpers.js';

function model() {
  const tok = smallTokenizer(2);
  const ck = randomLlama2cCheckpoint({ dim: 8, hiddenDim: 12, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: tok.vocabSize, seqLen: 32, sharedClassifier: true }, 4);
  const dir = mkdtempSync(join(tmpdir(), 'splice-field-'));
  writeFileSync(join(dir, 'model.bin'), encodeLlama2cCheckpoint(ck));
  return new Llama2cModel(ck, { engine: jsEngine });
}

/** Naive float64 log-softmax of one logits row. */
function logSoftmax(row: ArrayLike<number>): number[] {
  const xs = Array.from(row, Number);
  const z = Math.log(xs.reduce((s, v) => s + Math.exp(v), 0));
  return xs.map((v) => v - z);
}

describe('windowedLmStats', () => {
  const lm = model();
  const site = 'blocks.1.hook_resid_pre';
  const T = 12;
  const n = 5;
  const rng = new Rng(3);
  // BOS (1) at each window start, and a BOS separator inside window 2.
  const tokens = Int32Array.from({ length: n * T }, (_, i) => (i % T === 0 || i === 2 * T + 6 ? 1 : 3 + rng.int(lm.info.vocabSize - 3)));
  const scale = (x: Tensor) => ({ data: x.data.map((v) => 0.6 * v + 0.05), shape: x.shape });

  it('per-window CE (both conventions) and KL equal a window-by-window float64 recomputation from the logits', async () => {
    const stats = await windowedLmStats(lm, { tokens, batch: n, seqLen: T }, site, [
      { name: 'sae', rows: 'non-bos', fn: scale },
      { name: 'zeroAll', rows: 'all', fn: (x) => zeros(x.shape) },
    ], { batchWindows: 2 });
    const d = lm.siteDim(site);
    for (let w = 0; w < n; w++) {
      const ids = tokens.slice(w * T, (w + 1) * T);
      const clean = (await lm.run(ids, 1, T)).logits!;
      // Reference edits written out directly: scale rows whose token is not BOS; zero every row.
      const edited = (await lm.run(ids, 1, T, { replace: { site, fn: (a) => ({ data: a.data.map((v, i) => (ids[Math.floor(i / d)] === 1 ? v : 0.6 * v + 0.05)), shape: a.shape }) } })).logits!;
      const zeroed = (await lm.run(ids, 1, T, { replace: { site, fn: (a) => zeros(a.shape) } })).logits!;
      const V = clean.shape[1]!;
      const row = (t: Tensor, p: number) => logSoftmax(t.data.subarray(p * V, (p + 1) * V));
      for (const [name, logits] of [['sae', edited], ['zeroAll', zeroed]] as const) {
        let ceAll = 0;
        let ceNonBos = 0;
        let kl = 0;
        for (let p = 0; p < T; p++) {
          const lq = row(logits, p);
          const lp = row(clean, p);
          if (p < T - 1) {
            const ce = -lq[ids[p + 1]!]!;
            ceAll += ce;
            if (ids[p] !== 1) ceNonBos += ce;
          }
          if (ids[p] !== 1) kl += lp.reduce((s, v, k) => s + Math.exp(v) * (v - lq[k]!), 0);
        }
        const got = stats.runs[name]!;
        expect(got.ceAll[w]).toBeCloseTo(ceAll, 8);
        expect(got.ceNonBos[w]).toBeCloseTo(ceNonBos, 8);
        expect(got.klNonBos[w]).toBeCloseTo(kl, 8);
      }
      expect(stats.counts.predNonBos[w]).toBe(w === 2 ? T - 3 : T - 2); // predictions at positions 1..T−2, minus the separator
      expect(stats.counts.posNonBos[w]).toBe(w === 2 ? T - 2 : T - 1);
    }
  });

  it('our convention agrees with spliceCrossEntropyWindows, and the identity edit has zero KL', async () => {
    const stats = await windowedLmStats(lm, { tokens, batch: n, seqLen: T }, site, [
      { name: 'id', rows: 'non-bos', fn: (x) => x },
      { name: 'zero', rows: 'non-bos', fn: (x) => zeros(x.shape) },
    ]);
    const ours = await spliceCrossEntropyWindows(lm, { tokens, batch: n, seqLen: T }, site, (x) => zeros(x.shape));
    expect(runMeans(stats, stats.runs.zero!).ceAll).toBeCloseTo(ours.ceZero, 6);
    expect(runMeans(stats, stats.clean).ceAll).toBeCloseTo(ours.ceClean, 6);
    expect(runMeans(stats, stats.runs.id!).klNonBos).toBe(0);
    // Weights: a window counted twice and one dropped = the mean over that multiset of windows.
    const w = [2, 0, 1, 1, 1];
    const m = runMeans(stats, stats.runs.zero!, w);
    const want = w.reduce((s, c, i) => s + c * stats.runs.zero!.ceAll[i]!, 0) / w.reduce((s, c) => s + c * (T - 1), 0);
    expect(m.ceAll).toBeCloseTo(want, 12);
  });

  it('rejects duplicate edit names and a wrong token count', async () => {
    await expect(windowedLmStats(lm, { tokens, batch: n, seqLen: T }, site, [{ name: 'a', rows: 'all', fn: (x) => x }, { name: 'a', rows: 'all', fn: (x) => x }])).rejects.toThrow(/unique/);
    await expect(windowedLmStats(lm, { tokens, batch: n + 1, seqLen: T }, site, [])).rejects.toThrow(/tokens for 6 windows/);
  });
});
