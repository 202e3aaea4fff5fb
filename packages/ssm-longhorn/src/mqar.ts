/**
 * Multi-query associative recall (MQAR), as Zoology's `multiquery_ar` (Arora et al. 2023):
 *  - keys from [1, V/2), values from [V/2, V), N of each sampled without replacement;
 *  - positions 0..2N−1 hold k1 v1 … kN vN;
 *  - the rest (filler 0) holds each key once as a query, at even offsets 2g of the query region, the gaps g drawn
 *    without replacement from p(g) ∝ (g+1)^(a−1), a = 0.01 (short gaps likely);
 *  - only the token after each query is scored: its label (at the query's position, next-token style) is the value.
 * Accuracy = mean argmax hit over scored positions.
 */
import { z } from 'zod';
import { Rng } from '@saelab/core';
import { IGNORE } from './ops.js';
import type { Batch } from './train.js';
import type { Tensor } from '@saelab/core';

/** What MQAR evaluation needs of a model (LonghornLM, TransformerLM): logits for a batch of sequences. */
export interface LogitsModel {
  readonly config: { vocabSize: number };
  forward(tokens: Int32Array, batch: number, seqLen: number): Promise<{ logits?: Tensor }>;
}

/**
 * Zoology's constraint V > L (its MQAR runs use V = 8192): the smallest power of two above the training length
 * (and ≥ 128), the CPU scaling we state next to every result.
 */
export function zoologyVocab(seqLen: number): number {
  let v = 128;
  while (v <= seqLen) v *= 2;
  return v;
}

export const MqarConfigSchema = z
  .object({
    vocabSize: z.number().int().min(4),
    seqLen: z.number().int().min(4),
    numKvPairs: z.number().int().min(1),
    powerA: z.number().positive().default(0.01),
    /** Zoology's random_non_queries: replace filler 0s with random tokens (off by default; the spec says filler 0). */
    randomFiller: z.boolean().default(false),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.seqLen % 2 !== 0) ctx.addIssue({ code: 'custom', path: ['seqLen'], message: `seqLen must be even, got ${c.seqLen}` });
    if (4 * c.numKvPairs > c.seqLen) ctx.addIssue({ code: 'custom', path: ['numKvPairs'], message: `need 4·numKvPairs ≤ seqLen (${c.numKvPairs}, ${c.seqLen})` });
    if (Math.floor(c.vocabSize / 2) - 1 < c.numKvPairs) ctx.addIssue({ code: 'custom', path: ['vocabSize'], message: `vocabSize ${c.vocabSize} has fewer than ${c.numKvPairs} keys in [1, V/2)` });
  });
export type MqarConfig = z.output<typeof MqarConfigSchema>;
export type MqarConfigInput = z.input<typeof MqarConfigSchema>;

/** N distinct integers from [lo, hi) (partial Fisher–Yates). */
function sampleDistinct(rng: Rng, lo: number, hi: number, n: number): number[] {
  const pool = Array.from({ length: hi - lo }, (_, i) => lo + i);
  for (let i = 0; i < n; i++) {
    const j = i + rng.int(pool.length - i);
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, n);
}

/** n distinct indices from weights w, without replacement (numpy choice(replace=False, p=w)). */
function sampleWeighted(rng: Rng, w: Float64Array, n: number): number[] {
  const left = Float64Array.from(w);
  let total = left.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  for (let s = 0; s < n; s++) {
    let u = rng.uniform() * total;
    let i = 0;
    while (i < left.length - 1 && (u >= left[i]! || left[i] === 0)) u -= left[i++]!;
    while (left[i] === 0) i--; // float round-off at the end of the range
    out.push(i);
    total -= left[i]!;
    left[i] = 0;
  }
  return out;
}

/** `count` MQAR examples as one batch [count, L] with targets (IGNORE except the scored positions). */
export function mqarBatch(cfgIn: MqarConfigInput, count: number, rng: Rng): Batch {
  const c = MqarConfigSchema.parse(cfgIn);
  const { vocabSize: V, seqLen: L, numKvPairs: N } = c;
  const half = Math.floor(V / 2);
  const ctx = 2 * N;
  const space = Math.floor((L - ctx) / 2);
  const p = new Float64Array(space);
  for (let g = 0; g < space; g++) p[g] = c.powerA * Math.pow(g + 1, c.powerA - 1);
  const tokens = new Int32Array(count * L);
  const targets = new Int32Array(count * L).fill(IGNORE);
  for (let e = 0; e < count; e++) {
    const o = e * L;
    const keys = sampleDistinct(rng, 1, half, N);
    const values = sampleDistinct(rng, half, V, N);
    for (let i = 0; i < N; i++) {
      tokens[o + 2 * i] = keys[i]!;
      tokens[o + 2 * i + 1] = values[i]!;
    }
    const gaps = sampleWeighted(rng, p, N);
    for (let i = 0; i < N; i++) {
      const pos = ctx + 2 * gaps[i]!;
      tokens[o + pos] = keys[i]!;
      targets[o + pos] = values[i]!;
    }
    if (c.randomFiller) {
      for (let t = ctx; t < L; t++) if (tokens[o + t] === 0) tokens[o + t] = rng.int(V);
    }
  }
  return { tokens, targets, batch: count, seqLen: L };
}

/** MQAR accuracy of `lm` on `examples` (evaluated in batches). */
export async function mqarAccuracy(lm: LogitsModel, data: Batch, batchSize = 64): Promise<number> {
  return (await mqarEvaluate(lm, data, [], batchSize)).acc;
}

/** Accuracy over the queries whose distance to their key lies in [lo, hi). */
export interface GapBin {
  lo: number;
  hi: number;
  hits: number;
  total: number;
}

/**
 * MQAR accuracy, also split by the query's distance from its key-value pair (position of the query − position of
 * the key, in tokens): with `edges` [e0, e1, …] the bins are [0, e0), [e0, e1), …, [e_last, ∞). Distances beyond
 * the training length are what a length-extrapolation test must reach.
 */
export async function mqarEvaluate(lm: LogitsModel, data: Batch, edges: number[], batchSize = 64): Promise<{ acc: number; byGap: GapBin[] }> {
  const { tokens, targets, batch, seqLen: L } = data;
  const V = lm.config.vocabSize;
  const bounds = [0, ...edges, Infinity];
  const byGap: GapBin[] = bounds.slice(1).map((hi, i) => ({ lo: bounds[i]!, hi, hits: 0, total: 0 }));
  let hit = 0;
  let total = 0;
  for (let s = 0; s < batch; s += batchSize) {
    const B = Math.min(batchSize, batch - s);
    const { logits } = await lm.forward(tokens.subarray(s * L, (s + B) * L), B, L);
    for (let r = 0; r < B * L; r++) {
      const tgt = targets[s * L + r]!;
      if (tgt === IGNORE) continue;
      let arg = 0;
      for (let v = 1; v < V; v++) if (logits!.data[r * V + v]! > logits!.data[r * V + arg]!) arg = v;
      total++;
      const ok = arg === tgt ? 1 : 0;
      hit += ok;
      // the key is the first occurrence of the query token in its sequence (keys sit at even positions < 2N)
      const row0 = s * L + Math.floor(r / L) * L;
      const t = r % L;
      let keyPos = 0;
      while (keyPos < t && tokens[row0 + keyPos] !== tokens[row0 + t]) keyPos++;
      const gap = t - keyPos;
      const bin = byGap.find((b) => gap >= b.lo && gap < b.hi)!;
      bin.total++;
      bin.hits += ok;
    }
  }
  return { acc: total ? hit / total : 0, byGap };
}

/** A seeded MQAR training stream: step s gets fresh examples from Rng(seed · 1 000 003 + s). */
export function mqarStream(cfg: MqarConfigInput, batchSize: number, seed: number): (step: number) => Batch {
  MqarConfigSchema.parse(cfg);
  return (step) => mqarBatch(cfg, batchSize, new Rng((seed * 1_000_003 + step) >>> 0));
}
