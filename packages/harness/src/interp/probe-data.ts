/**
 * Probing data from the labels our corpora carry (docs/interpretability.md), read through a hookable LM:
 *  - `pos` (token level): Brown's coarse part-of-speech tag of a word, on the token holding the word's last
 *    character (@saelab/activations pos.ts). Only Brown documents OUTSIDE the corpus train split (validation + test,
 *    50 files) are used, so the probed text is disjoint from the text the sweep's SAEs and LM are trained on.
 *    Classes: every coarse tag but "other". At most `maxPerClass` tokens per class and probe split are kept.
 *  - `brown-genre` (document level): the file's genre letter (a … r), all 500 Brown files.
 *  - `sotu-era`: the address's half-century (1750-1799 … 2000-2049), from the file name's year.
 *  - `sotu-party`: the president's party code in the file name (d, r, dr, f, w, …).
 *    Document-level examples are a document's LM activations mean-pooled over its first `docTokens` tokens (for an
 *    SAE: its latents, encoded per token, then mean-pooled). All documents are used (a document-level task has too
 *    few documents otherwise); the labels were never seen by any training.
 * Windows are built as a harvest builds them (BOS first, `contextLength` tokens; BOS rows dropped). Each task's
 * probe train/test split is by DOCUMENT: the first 4 bytes of SHA-256("probe/" + corpus/id) / 2³² < 0.7 → train.
 */
import { createHash } from 'node:crypto';
import {
  BROWN_GENRES,
  COARSE_TAGS,
  type TextTokenizer,
  documentWindows,
  halfCentury,
  loadCorpus,
  sotuMetadata,
  splitOf,
  tagBrownDocument,
} from '@saelab/activations';
import { type HookableLM, Rng, type Tensor } from '@saelab/core';
import { z } from 'zod';
import type { FeatureMatrix, LabelledExamples } from './sparse-probe.js';

export const PROBE_TASKS = ['pos', 'brown-genre', 'sotu-era', 'sotu-party'] as const;
export const ProbeTaskSchema = z.enum(PROBE_TASKS);
export type ProbeTaskName = z.infer<typeof ProbeTaskSchema>;

export const PROBE_TRAIN_FRACTION = 0.7;

export interface ProbeDataOptions {
  contextLength?: number;
  /** Windows per LM forward. */
  batchWindows?: number;
  /** pos: tokens per class and split kept (default 500). */
  maxPerClass?: number;
  /** pos: tokens read per document (default 2048). */
  posDocTokens?: number;
  /** Document tasks: tokens per document mean-pooled (default 256). */
  docTokens?: number;
  /** Shares a corpus's document activations between tasks (sotu-era and sotu-party read the same documents). */
  documentCache?: Map<string, { x: Float32Array; offsets: Int32Array }>;
}

/** A task's raw activations and labels. */
export interface ProbeData {
  task: ProbeTaskName;
  level: 'token' | 'document';
  d: number;
  /** token level: [examples, d]; document level: [Σ tokens, d], document i's rows at docOffsets[i] … docOffsets[i+1]. */
  x: Float32Array;
  docOffsets?: Int32Array;
  examples: LabelledExamples;
  /** Document ids used (for provenance). */
  documents: number;
}

/** The probe split of a document: 0 = train, 1 = test. */
export function probeSplitOf(corpus: string, id: string): 0 | 1 {
  // SHA-256, not FNV-1a: FNV-1a's top bits barely depend on a middle character, so ids that differ only in the
  // genre letter (ca01 … cr09) would land in the same split genre by genre.
  return createHash('sha256').update(`probe/${corpus}/${id}`).digest().readUInt32BE(0) / 2 ** 32 < PROBE_TRAIN_FRACTION ? 0 : 1;
}

/** Site activations [tokens.length, d] of one document's tokens (windows as a harvest makes them). */
async function documentActivations(
  lm: HookableLM,
  tokenizer: TextTokenizer,
  site: string,
  docs: readonly number[][],
  T: number,
  batchWindows: number,
): Promise<Float32Array[]> {
  const d = lm.siteDim(site);
  const out = docs.map((t) => new Float32Array(t.length * d));
  const lead = tokenizer.bos === null ? 0 : 1;
  const pending: { doc: number; start: number; tokens: number[] }[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const B = pending.length;
    const ids = new Int32Array(B * T).fill(tokenizer.bos ?? 0);
    pending.forEach((w, b) => ids.set(w.tokens, b * T));
    const { acts } = await lm.run(ids, B, T, { read: [site], skipLogits: true });
    const a = acts[site]!.data;
    pending.forEach((w, b) => {
      const n = w.tokens.length - lead;
      out[w.doc]!.set(a.subarray((b * T + lead) * d, (b * T + lead + n) * d), w.start * d);
    });
    pending.length = 0;
  };
  for (let doc = 0; doc < docs.length; doc++) {
    let start = 0;
    for (const w of documentWindows(docs[doc]!, T, tokenizer.bos)) {
      pending.push({ doc, start, tokens: w });
      start += w.length - lead;
      if (pending.length >= batchWindows) await flush();
    }
  }
  await flush();
  return out;
}

/** Builds one task's probing data with `lm` at `site`. */
export async function buildProbeData(lm: HookableLM, tokenizer: TextTokenizer, site: string, task: ProbeTaskName, o: ProbeDataOptions = {}): Promise<ProbeData> {
  const T = Math.min(o.contextLength ?? 128, lm.info.maxSeqLen);
  const batch = o.batchWindows ?? 16;
  const d = lm.siteDim(site);
  if (task === 'pos') {
    const maxPer = o.maxPerClass ?? 500;
    const docs = loadCorpus('brown').filter((doc) => splitOf('brown', doc.id) !== 'train');
    const tagged = docs.map((doc) => tagBrownDocument(doc.id, tokenizer));
    const tokens = tagged.map((t) => t.tokens.slice(0, o.posDocTokens ?? 2048));
    const acts = await documentActivations(lm, tokenizer, site, tokens, T, batch);
    const classes = COARSE_TAGS.filter((c) => c !== 'other');
    // Every labelled token is a candidate; a seeded random subset of ≤ maxPerClass per (class, split) is kept, so
    // the kept tokens spread over all documents.
    const groups = new Map<string, { doc: number; pos: number; label: number; split: 0 | 1 }[]>();
    tagged.forEach((t, doc) => {
      const split = probeSplitOf('brown', t.id);
      for (let pos = 0; pos < tokens[doc]!.length; pos++) {
        const tag = t.labels[pos]!;
        const label = tag >= 0 ? classes.indexOf(COARSE_TAGS[tag]! as (typeof classes)[number]) : -1;
        if (label < 0) continue;
        const key = `${label}/${split}`;
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key)!.push({ doc, pos, label, split });
      }
    });
    const rng = new Rng(12345);
    const kept = [...groups.keys()].sort().flatMap((key) => rng.shuffle(groups.get(key)!).slice(0, maxPer));
    const x = new Float32Array(kept.length * d);
    kept.forEach((k, i) => x.set(acts[k.doc]!.subarray(k.pos * d, (k.pos + 1) * d), i * d));
    return {
      task,
      level: 'token',
      d,
      x,
      examples: { label: Int32Array.from(kept, (k) => k.label), split: Uint8Array.from(kept, (k) => k.split), classes },
      documents: docs.length,
    };
  }
  const corpus = task === 'brown-genre' ? 'brown' : 'sotu';
  const docs = loadCorpus(corpus);
  const labelOf = (id: string) =>
    task === 'brown-genre' ? id[1]! : task === 'sotu-era' ? halfCentury(sotuMetadata(id).year) : sotuMetadata(id).party;
  const names = [...new Set(docs.map((doc) => labelOf(doc.id)))].sort();
  const key = `${corpus}/${o.docTokens ?? 256}/${T}/${site}`;
  let cached = o.documentCache?.get(key);
  if (!cached) {
    const tokens = docs.map((doc) => tokenizer.encode(doc.text).slice(0, o.docTokens ?? 256));
    const acts = await documentActivations(lm, tokenizer, site, tokens, T, batch);
    const offsets = new Int32Array(docs.length + 1);
    tokens.forEach((t, i) => (offsets[i + 1] = offsets[i]! + t.length));
    const x = new Float32Array(offsets[docs.length]! * d);
    acts.forEach((a, i) => x.set(a, offsets[i]! * d));
    cached = { x, offsets };
    o.documentCache?.set(key, cached);
  }
  const { x, offsets } = cached;
  return {
    task,
    level: 'document',
    d,
    x,
    docOffsets: offsets,
    examples: {
      label: Int32Array.from(docs, (doc) => names.indexOf(labelOf(doc.id))),
      split: Uint8Array.from(docs, (doc) => probeSplitOf(corpus, doc.id)),
      classes: task === 'brown-genre' ? names.map((l) => `${l} (${BROWN_GENRES[l]})`) : names,
    },
    documents: docs.length,
  };
}

/** Maps rows [n, d] to features [n, m] (an SAE's encoder), batch by batch. */
export type RowEncoder = (x: Tensor) => Promise<Tensor>;

/**
 * Per-example features of probing data: the raw activations (no encoder) or the encoder's outputs; document-level
 * examples mean-pool over the document's tokens (after encoding).
 */
export async function probeFeatures(data: ProbeData, encode?: RowEncoder, batchRows = 4096): Promise<FeatureMatrix> {
  const d = data.d;
  const totalRows = data.x.length / d;
  let cols = d;
  let encoded: Float32Array | null = null;
  const encodeRows = async (start: number, n: number): Promise<Float32Array> => {
    const view = data.x.subarray(start * d, (start + n) * d);
    if (!encode) return view;
    const f = await encode({ data: view, shape: [n, d] });
    cols = f.shape[1]!;
    return f.data;
  };
  if (data.level === 'token') {
    for (let s = 0; s < totalRows; s += batchRows) {
      const n = Math.min(batchRows, totalRows - s);
      const f = await encodeRows(s, n);
      encoded ??= new Float32Array(totalRows * cols);
      encoded.set(f, s * cols);
    }
    return { rows: totalRows, cols, data: encoded ?? new Float32Array(0) };
  }
  const off = data.docOffsets!;
  const docs = off.length - 1;
  let pooled: Float32Array | null = null;
  // Encode whole documents in groups of ≤ batchRows rows, then average each document's rows.
  for (let i = 0; i < docs; ) {
    let j = i + 1;
    while (j < docs && off[j + 1]! - off[i]! <= batchRows) j++;
    const f = await encodeRows(off[i]!, off[j]! - off[i]!);
    pooled ??= new Float32Array(docs * cols);
    for (let doc = i; doc < j; doc++) {
      const n = off[doc + 1]! - off[doc]!;
      const acc = new Float64Array(cols);
      for (let r = off[doc]! - off[i]!; r < off[doc + 1]! - off[i]!; r++) for (let c = 0; c < cols; c++) acc[c]! += f[r * cols + c]!;
      for (let c = 0; c < cols; c++) pooled[doc * cols + c] = n > 0 ? acc[c]! / n : 0;
    }
    i = j;
  }
  return { rows: docs, cols, data: pooled ?? new Float32Array(0) };
}
