/**
 * Restricted vocabularies: a Longhorn LM trained on a corpus keeps only the V−2 most frequent tokens of a base
 * tokenizer (e.g. GPT-2) plus <unk> (id 0) and <eot> (id 1, the document separator / BOS), so the LM head stays
 * small (docs/specs/data.md). `vocab.json` in a model folder records the mapping; `restrictTokenizer` wraps the base
 * tokenizer so text ↔ model ids round-trip (unknown base tokens → <unk>).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '@saelab/core';

export const VOCAB_FILE = 'vocab.json';
export const UNK = 0;
export const EOT = 1;

export const RestrictedVocabSchema = z.object({
  /** The base tokenizer's name, e.g. "gpt2". */
  tokenizer: z.string(),
  /** baseIds[i] is the base token of model id i + 2. */
  baseIds: z.array(z.number().int().min(0)),
});
export type RestrictedVocab = z.infer<typeof RestrictedVocabSchema>;

/** The structural tokenizer interface of @saelab/activations (TextTokenizer). */
export interface BaseTokenizer {
  readonly name: string;
  readonly vocabSize: number;
  readonly bos: number | null;
  encode(text: string): number[];
  decode(tokens: ArrayLike<number>): string;
}

/** The V−2 most frequent tokens of `ids` (ties by id), as a restricted vocabulary. */
export function buildVocab(tokenizer: string, ids: ArrayLike<number>, vocabSize: number): RestrictedVocab {
  const freq = new Map<number, number>();
  for (let i = 0; i < ids.length; i++) freq.set(ids[i]!, (freq.get(ids[i]!) ?? 0) + 1);
  const baseIds = [...freq.entries()].sort((x, y) => y[1] - x[1] || x[0] - y[0]).slice(0, vocabSize - 2).map(([t]) => t);
  return { tokenizer, baseIds };
}

/** Maps base token ids to model ids (unknown → <unk>). */
export function toModelIds(vocab: RestrictedVocab, base: ArrayLike<number>): Int32Array {
  const index = new Map(vocab.baseIds.map((t, i) => [t, i + 2]));
  return Int32Array.from({ length: base.length }, (_, i) => index.get(base[i]!) ?? UNK);
}

/** A tokenizer over model ids: BOS = <eot>; decode renders <unk> as "<unk>". */
export function restrictTokenizer(base: BaseTokenizer, vocab: RestrictedVocab): BaseTokenizer {
  if (base.name !== vocab.tokenizer) throw new Error(`restrictTokenizer: vocabulary was built with '${vocab.tokenizer}', not '${base.name}'`);
  return {
    name: `${base.name}:restricted${vocab.baseIds.length + 2}`,
    vocabSize: vocab.baseIds.length + 2,
    bos: EOT,
    encode: (text) => Array.from(toModelIds(vocab, base.encode(text))),
    decode: (tokens) =>
      Array.from(tokens, (t) => (t === UNK ? '<unk>' : t === EOT ? '\n\n' : base.decode([vocab.baseIds[t - 2]!]))).join(''),
  };
}

export async function saveVocab(dir: string, vocab: RestrictedVocab): Promise<void> {
  await writeFileAtomic(join(dir, VOCAB_FILE), JSON.stringify(vocab) + '\n');
}

/** Reads `vocab.json` from a model folder, or null if the model uses raw token ids. */
export function loadVocab(dir: string): RestrictedVocab | null {
  const p = join(dir, VOCAB_FILE);
  if (!existsSync(p)) return null;
  const r = RestrictedVocabSchema.safeParse(JSON.parse(readFileSync(p, 'utf8')));
  if (!r.success) throw new Error(`${p}: invalid vocabulary (${r.error.issues[0]?.message})`);
  return r.data;
}
