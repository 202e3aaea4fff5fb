/**
 * `harvest`: run a language model over a corpus split and store the activations at one hook site.
 *
 * Documents are taken in corpus order, tokenized, and cut into windows of `contextLength` tokens, each starting
 * with BOS (when the tokenizer has one) followed by the next contextLength−1 document tokens; a document's last
 * window is padded. Rows at BOS and padding positions are not stored. Windows are batched `batchSize` at a time.
 *
 * Shards are written atomically, and after each one the manifest records the cursor (document, window) of the
 * next unprocessed window plus the running scale statistics, so an interrupted harvest resumes exactly where the
 * last shard ended; an already complete store with the same settings is left as is.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import type { HookableLM } from '@saelab/core';
import { type CorpusDocument, SplitSchema, loadCorpora } from './corpora.js';
import { Llama2cModel } from './llama2c/model.js';
import { OnnxLM, OnnxLmOptionsSchema } from './onnx-lm.js';
import { parseModelSource } from './source.js';
import { MANIFEST_FILE, type Manifest, type ShardEntry, STORE_FORMAT, ScaleAccumulator, readManifest, writeManifest, writeShard } from './store.js';
import { type TextTokenizer, createTokenizer } from './tokenizers.js';

export const HarvestOptionsSchema = z.object({
  /** `llama2c:PATH` or `onnx:PATH`. */
  source: z.string().min(1),
  /** "gpt2" or "llama2c:PATH". Default for llama2c: the tokenizer file beside the checkpoint; for ONNX: gpt2. */
  tokenizer: z.string().optional(),
  site: z.string().min(1),
  /** Corpus names joined with "+", e.g. "sotu+brown". */
  corpus: z.string().default('sotu+brown'),
  split: SplitSchema.default('train'),
  /** Number of activation rows to store (BOS/padding rows do not count). */
  tokens: z.number().int().positive(),
  contextLength: z.number().int().min(2).default(128),
  /** Windows per forward pass. */
  batchSize: z.number().int().positive().default(16),
  out: z.string().min(1),
  dtype: z.enum(['float32', 'float16']).default('float32'),
  /** Target rows per shard (shards end at batch boundaries, so they may hold a little more). */
  shardRows: z.number().int().positive().default(1 << 17),
  /** ONNX adapter settings (input/output names, site mapping, BOS). */
  onnx: OnnxLmOptionsSchema.optional(),
});
export type HarvestOptions = z.input<typeof HarvestOptionsSchema>;

export interface HarvestProgress {
  rows: number;
  target: number;
  /** Tokens run through the model (including BOS and padding) and rows stored, per second, this session. */
  tokensPerSecond: number;
  rowsPerSecond: number;
  shards: number;
  elapsedSeconds: number;
}

interface Cursor {
  doc: number;
  window: number;
}

/** The parts of the settings a resumed harvest must share with the stored one. */
function identity(o: z.infer<typeof HarvestOptionsSchema>, tokenizer: string, d: number) {
  return { source: o.source, site: o.site, d, dtype: o.dtype, tokenizer, corpus: o.corpus, split: o.split, contextLength: o.contextLength };
}

function defaultLlama2cTokenizer(checkpoint: string): string {
  const dir = dirname(checkpoint);
  const candidates = existsSync(join(dir, 'tokenizer.bin')) ? ['tokenizer.bin'] : readdirSync(dir).filter((f) => /^tok.*\.bin$/.test(f));
  if (candidates.length !== 1) {
    throw new Error(`harvest: cannot pick a tokenizer beside ${checkpoint} (found ${candidates.join(', ') || 'none'}); pass tokenizer: "llama2c:PATH"`);
  }
  return `llama2c:${join(dir, candidates[0]!)}`;
}

/** The language model named by a source spec (`llama2c:PATH` | `onnx:PATH`), e.g. a manifest's `source`. */
export async function openLm(source: string, onnx?: z.input<typeof OnnxLmOptionsSchema>): Promise<HookableLM> {
  const src = parseModelSource(source);
  return src.kind === 'llama2c' ? Llama2cModel.load(src.path) : OnnxLM.create(src.path, onnx);
}

/** Open the model and tokenizer named by harvest options. */
export async function openSource(o: z.infer<typeof HarvestOptionsSchema>): Promise<{ lm: HookableLM; tokenizer: TextTokenizer }> {
  const src = parseModelSource(o.source);
  if (src.kind === 'llama2c') {
    const lm = Llama2cModel.load(src.path);
    const tokenizer = createTokenizer(o.tokenizer ?? defaultLlama2cTokenizer(src.path), lm.config.vocabSize);
    return { lm, tokenizer };
  }
  const tokenizer = createTokenizer(o.tokenizer ?? 'gpt2');
  const lm = await OnnxLM.create(src.path, { bos: tokenizer.bos, ...o.onnx });
  return { lm, tokenizer };
}

/** Windows of one document: [BOS?, up to T−(BOS?1:0) tokens], in order. */
export function documentWindows(tokens: number[], T: number, bos: number | null): number[][] {
  const body = bos === null ? T : T - 1;
  const out: number[][] = [];
  for (let s = 0; s < tokens.length; s += body) {
    const w = tokens.slice(s, s + body);
    out.push(bos === null ? w : [bos, ...w]);
  }
  return out;
}

/** Yields windows from `cursor` on, with the cursor of the window after each. */
function* windows(docs: CorpusDocument[], tok: TextTokenizer, T: number, from: Cursor): Generator<{ tokens: number[]; next: Cursor }> {
  for (let doc = from.doc; doc < docs.length; doc++) {
    const ws = documentWindows(tok.encode(docs[doc]!.text), T, tok.bos);
    for (let w = doc === from.doc ? from.window : 0; w < ws.length; w++) {
      yield { tokens: ws[w]!, next: w + 1 < ws.length ? { doc, window: w + 1 } : { doc: doc + 1, window: 0 } };
    }
  }
}

/**
 * Harvest activations into `out`. Resumes an interrupted harvest with the same settings; returns the final
 * manifest. `onProgress` is called after every batch (wire a progress bar to it). `model` supplies an LM that
 * is not named by a source spec (e.g. the project's own Longhorn LM); `options.source` is then only recorded.
 */
export async function harvest(
  options: HarvestOptions,
  onProgress?: (p: HarvestProgress) => void,
  model?: { lm: HookableLM; tokenizer: TextTokenizer },
): Promise<Manifest> {
  const o = HarvestOptionsSchema.parse(options);
  const { lm, tokenizer } = model ?? (await openSource(o));
  if (o.contextLength > lm.info.maxSeqLen) throw new Error(`harvest: contextLength ${o.contextLength} exceeds the model's context ${lm.info.maxSeqLen}`);
  const d = lm.siteDim(o.site);
  const id = identity(o, tokenizer.name, d);
  const docs = loadCorpora(o.corpus, o.split);

  // Resume state.
  let shards: ShardEntry[] = [];
  let cursor: Cursor = { doc: 0, window: 0 };
  const scale = new ScaleAccumulator();
  let rows = 0;
  if (existsSync(join(o.out, MANIFEST_FILE))) {
    const m = readManifest(o.out);
    const h = (m.harvest ?? {}) as { identity?: unknown; cursor?: Cursor; sumSq?: number };
    if (JSON.stringify(h.identity) !== JSON.stringify(id)) {
      throw new Error(`${join(o.out, MANIFEST_FILE)}: holds a harvest with different settings (${JSON.stringify(h.identity)}); choose another --out`);
    }
    if (m.complete && m.rows >= o.tokens) return m;
    shards = m.shards;
    cursor = h.cursor ?? cursor;
    rows = m.rows;
    scale.rows = m.rows;
    scale.sumSq = h.sumSq ?? 0;
  }

  const manifest = (complete: boolean): Manifest => ({
    format: STORE_FORMAT,
    version: 1,
    source: o.source,
    site: o.site,
    d,
    dtype: o.dtype,
    tokenizer: tokenizer.name,
    corpus: { name: o.corpus, split: o.split },
    contextLength: o.contextLength,
    rows,
    shards,
    scale: scale.result(),
    complete,
    harvest: { identity: id, cursor, sumSq: scale.sumSq },
  });

  const T = o.contextLength;
  const t0 = performance.now();
  let tokensRun = 0;
  let rowsThisRun = 0;
  let pending: Float32Array[] = [];
  let pendingRows = 0;
  const flush = async (complete: boolean) => {
    if (pendingRows > 0) {
      const data = new Float32Array(pendingRows * d);
      let off = 0;
      for (const p of pending) {
        data.set(p, off);
        off += p.length;
      }
      shards = [...shards, await writeShard(o.out, shards.length, data, d, o.dtype)];
      pending = [];
      pendingRows = 0;
    }
    await writeManifest(o.out, manifest(complete));
  };

  const it = windows(docs, tokenizer, T, cursor);
  let exhausted = false;
  while (rows + pendingRows < o.tokens && !exhausted) {
    // Assemble a batch of windows, padded to T (padding rows are masked out).
    const batch: number[][] = [];
    let next = cursor;
    while (batch.length < o.batchSize) {
      const r = it.next();
      if (r.done) {
        exhausted = true;
        break;
      }
      batch.push(r.value.tokens);
      next = r.value.next;
    }
    if (batch.length === 0) break;
    const B = batch.length;
    const ids = new Int32Array(B * T).fill(tokenizer.bos ?? 0);
    const keep: number[] = [];
    batch.forEach((w, b) => {
      ids.set(w, b * T);
      for (let t = tokenizer.bos === null ? 0 : 1; t < w.length; t++) keep.push(b * T + t);
    });
    const { acts } = await lm.run(ids, B, T, { read: [o.site], skipLogits: true });
    const act = acts[o.site]!.data;
    const take = Math.min(keep.length, o.tokens - rows - pendingRows);
    const out = new Float32Array(take * d);
    for (let i = 0; i < take; i++) out.set(act.subarray(keep[i]! * d, (keep[i]! + 1) * d), i * d);
    scale.add(out, d);
    pending.push(out);
    pendingRows += take;
    tokensRun += B * T;
    rowsThisRun += take;
    cursor = next;
    if (pendingRows >= o.shardRows) {
      rows += pendingRows;
      await flush(false);
    }
    const elapsed = (performance.now() - t0) / 1000;
    onProgress?.({
      rows: rows + pendingRows,
      target: o.tokens,
      tokensPerSecond: tokensRun / elapsed,
      rowsPerSecond: rowsThisRun / elapsed,
      shards: shards.length,
      elapsedSeconds: elapsed,
    });
  }
  rows += pendingRows;
  await flush(true);
  if (rows < o.tokens) {
    process.emitWarning(`harvest: the ${o.corpus} ${o.split} split ran out after ${rows} rows (asked for ${o.tokens})`);
  }
  return manifest(true);
}

/**
 * The first `count` FULL windows ([BOS, T−1 document tokens], no padding) of a corpus split, as a row-major
 * [count, T] token array — the same windows a harvest sees, for evaluating ΔLM loss on held-out text.
 * Returns fewer rows if the split runs out.
 */
export function corpusWindows(opts: { corpus: string; split: z.infer<typeof SplitSchema>; tokenizer: TextTokenizer; contextLength: number; count: number }): {
  tokens: Int32Array;
  batch: number;
  seqLen: number;
} {
  const T = opts.contextLength;
  const out: number[][] = [];
  for (const w of windows(loadCorpora(opts.corpus, opts.split), opts.tokenizer, T, { doc: 0, window: 0 })) {
    if (out.length >= opts.count) break;
    if (w.tokens.length === T) out.push(w.tokens);
  }
  const tokens = new Int32Array(out.length * T);
  out.forEach((w, i) => tokens.set(w, i * T));
  return { tokens, batch: out.length, seqLen: T };
}
