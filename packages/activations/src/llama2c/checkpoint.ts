/**
 * llama2.c checkpoints (the "legacy" format written by llama2.c's export.py / train.py and read by run.c).
 *
 * Header: 7 int32 — dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len. A negative vocab_size
 * means the classifier is stored separately (not tied to the embedding). Then float32 weights in this order:
 * token embedding [V, dim], rms_att [L, dim], wq [L, dim, dim], wk [L, kv_dim, dim], wv [L, kv_dim, dim],
 * wo [L, dim, dim], rms_ffn [L, dim], w1 [L, hidden, dim], w2 [L, dim, hidden], w3 [L, hidden, dim],
 * rms_final [dim], two legacy RoPE tables of seq_len·head_size/2 floats each (skipped), and wcls [V, dim]
 * when not shared. Matrices are stored (out, in) row-major, as run.c's `matmul` expects.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { Rng } from '@saelab/core';

export const Llama2cConfigSchema = z
  .object({
    dim: z.number().int().positive(),
    hiddenDim: z.number().int().positive(),
    nLayers: z.number().int().positive(),
    nHeads: z.number().int().positive(),
    nKvHeads: z.number().int().positive(),
    vocabSize: z.number().int().positive(),
    seqLen: z.number().int().positive(),
    sharedClassifier: z.boolean(),
  })
  .refine((c) => c.dim % c.nHeads === 0, { message: 'dim must be divisible by n_heads' })
  .refine((c) => c.nHeads % c.nKvHeads === 0, { message: 'n_heads must be divisible by n_kv_heads' })
  .refine((c) => (c.dim / c.nHeads) % 2 === 0, { message: 'head size must be even for RoPE' });
export type Llama2cConfig = z.infer<typeof Llama2cConfigSchema>;

/** Per-layer weights, each a separate Float32Array (row-major, (out, in)). */
export interface Llama2cLayer {
  rmsAtt: Float32Array;
  wq: Float32Array;
  wk: Float32Array;
  wv: Float32Array;
  wo: Float32Array;
  rmsFfn: Float32Array;
  w1: Float32Array;
  w2: Float32Array;
  w3: Float32Array;
}

export interface Llama2cWeights {
  tokenEmbedding: Float32Array;
  layers: Llama2cLayer[];
  rmsFinal: Float32Array;
  /** Same array as tokenEmbedding when shared. */
  wcls: Float32Array;
}

export interface Llama2cCheckpoint {
  config: Llama2cConfig;
  weights: Llama2cWeights;
}

const HEADER_BYTES = 7 * 4;

export function headSize(c: Llama2cConfig): number {
  return c.dim / c.nHeads;
}
export function kvDim(c: Llama2cConfig): number {
  return (c.dim * c.nKvHeads) / c.nHeads;
}

/** Number of float32 values after the header, for a config. */
export function checkpointFloats(c: Llama2cConfig): number {
  const L = c.nLayers;
  const perLayer = 2 * c.dim + 2 * c.dim * c.dim + 2 * c.dim * kvDim(c) + 3 * c.dim * c.hiddenDim;
  return c.vocabSize * c.dim + L * perLayer + c.dim + c.seqLen * headSize(c) + (c.sharedClassifier ? 0 : c.vocabSize * c.dim);
}

export function parseLlama2cCheckpoint(bytes: Uint8Array, name = 'checkpoint'): Llama2cCheckpoint {
  if (bytes.byteLength < HEADER_BYTES) throw new Error(`${name}: ${bytes.byteLength} bytes is too short for a llama2.c header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = Array.from({ length: 7 }, (_, i) => view.getInt32(4 * i, true));
  const parsed = Llama2cConfigSchema.safeParse({
    dim: h[0],
    hiddenDim: h[1],
    nLayers: h[2],
    nHeads: h[3],
    nKvHeads: h[4],
    vocabSize: Math.abs(h[5]!),
    seqLen: h[6],
    sharedClassifier: h[5]! > 0,
  });
  if (!parsed.success) {
    throw new Error(`${name}: not a llama2.c checkpoint (header [${h.join(', ')}]): ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }
  const config = parsed.data;
  const need = checkpointFloats(config);
  const have = (bytes.byteLength - HEADER_BYTES) / 4;
  if (have !== need) {
    throw new Error(`${name}: header [${h.join(', ')}] needs ${need} float32 weights but the file holds ${have} (truncated or wrong format)`);
  }
  // Copy into an aligned buffer: the file's bytes may not be 4-byte aligned.
  const all = new Float32Array(need);
  new Uint8Array(all.buffer).set(bytes.subarray(HEADER_BYTES, HEADER_BYTES + need * 4));
  let off = 0;
  const take = (n: number) => {
    const a = all.subarray(off, off + n);
    off += n;
    return a;
  };
  const { dim, hiddenDim, nLayers: L } = config;
  const kv = kvDim(config);
  const tokenEmbedding = take(config.vocabSize * dim);
  const rmsAtt = take(L * dim);
  const wq = take(L * dim * dim);
  const wk = take(L * kv * dim);
  const wv = take(L * kv * dim);
  const wo = take(L * dim * dim);
  const rmsFfn = take(L * dim);
  const w1 = take(L * hiddenDim * dim);
  const w2 = take(L * dim * hiddenDim);
  const w3 = take(L * hiddenDim * dim);
  const rmsFinal = take(dim);
  take(config.seqLen * headSize(config)); // legacy freq_cis_real + freq_cis_imag
  const wcls = config.sharedClassifier ? tokenEmbedding : take(config.vocabSize * dim);
  // Each layer's matrices become standalone arrays (byteOffset 0) so they can be handed to a GEMM engine as is.
  const layer = (a: Float32Array, l: number, n: number) => a.slice(l * n, (l + 1) * n);
  const layers: Llama2cLayer[] = Array.from({ length: L }, (_, l) => ({
    rmsAtt: layer(rmsAtt, l, dim),
    wq: layer(wq, l, dim * dim),
    wk: layer(wk, l, kv * dim),
    wv: layer(wv, l, kv * dim),
    wo: layer(wo, l, dim * dim),
    rmsFfn: layer(rmsFfn, l, dim),
    w1: layer(w1, l, hiddenDim * dim),
    w2: layer(w2, l, dim * hiddenDim),
    w3: layer(w3, l, hiddenDim * dim),
  }));
  return { config, weights: { tokenEmbedding: tokenEmbedding.slice(), layers, rmsFinal: rmsFinal.slice(), wcls: wcls.slice() } };
}

export function loadLlama2cCheckpoint(path: string): Llama2cCheckpoint {
  return parseLlama2cCheckpoint(readFileSync(path), path);
}

/** Serialise to llama2.c's format (the RoPE tables are written as zeros; run.c ignores them). */
export function encodeLlama2cCheckpoint(ck: Llama2cCheckpoint): Uint8Array {
  const { config: c, weights: w } = ck;
  const out = new Uint8Array(HEADER_BYTES + 4 * checkpointFloats(c));
  const view = new DataView(out.buffer);
  [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.sharedClassifier ? c.vocabSize : -c.vocabSize, c.seqLen].forEach((v, i) =>
    view.setInt32(4 * i, v, true),
  );
  const floats = new Float32Array(out.buffer, HEADER_BYTES);
  let off = 0;
  const put = (a: Float32Array) => {
    floats.set(a, off);
    off += a.length;
  };
  put(w.tokenEmbedding);
  for (const key of ['rmsAtt', 'wq', 'wk', 'wv', 'wo', 'rmsFfn', 'w1', 'w2', 'w3'] as const) for (const l of w.layers) put(l[key]);
  put(w.rmsFinal);
  off += c.seqLen * headSize(c);
  if (!c.sharedClassifier) put(w.wcls);
  return out;
}

/** A random checkpoint of any size (for tests): N(0, std²) matrices, RMS weights near 1. */
export function randomLlama2cCheckpoint(config: Llama2cConfig, seed: number, std = 0.2): Llama2cCheckpoint {
  const c = Llama2cConfigSchema.parse(config);
  const rng = new Rng(seed);
  const mat = (n: number) => rng.fillNormal(new Float32Array(n), std);
  const rms = (n: number) => rng.fillUniform(new Float32Array(n), 0.5, 1.5);
  const kv = kvDim(c);
  const tokenEmbedding = rng.fillNormal(new Float32Array(c.vocabSize * c.dim), 1);
  const layers = Array.from({ length: c.nLayers }, () => ({
    rmsAtt: rms(c.dim),
    wq: mat(c.dim * c.dim),
    wk: mat(kv * c.dim),
    wv: mat(kv * c.dim),
    wo: mat(c.dim * c.dim),
    rmsFfn: rms(c.dim),
    w1: mat(c.hiddenDim * c.dim),
    w2: mat(c.dim * c.hiddenDim),
    w3: mat(c.hiddenDim * c.dim),
  }));
  const wcls = c.sharedClassifier ? tokenEmbedding : mat(c.vocabSize * c.dim);
  return { config: c, weights: { tokenEmbedding, layers, rmsFinal: rms(c.dim), wcls } };
}
