/**
 * Token streams for the sweep's language models: corpus documents (train / validation split, seeded order) encoded
 * paragraph by paragraph and concatenated with a separator token, plus the default LM's tokenizer — GPT-2 BPE
 * restricted to the most frequent tokens of the training text (data.md: a 50k head would dominate a small CPU
 * model's cost), with two specials: 0 = document separator, 1 = unknown.
 */
import { type CorpusDocument, type TextTokenizer, gpt2Tokenizer, loadCorpora } from '@saelab/activations';
import { Rng } from '@saelab/core';

export const SEPARATOR = 0;
export const UNKNOWN = 1;

/** Documents of a split in a seeded order (so the first N tokens mix the corpora instead of being all SOTU). */
export function shuffledDocuments(corpus: string, split: 'train' | 'validation' | 'test', seed: number): CorpusDocument[] {
  const docs = loadCorpora(corpus, split);
  if (docs.length === 0) throw new Error(`corpus '${corpus}' has no ${split} documents`);
  const order = docs.map((_, i) => i);
  new Rng(seed).shuffle(order);
  return order.map((i) => docs[i]!);
}

/**
 * Encodes documents into one stream: each document's paragraphs (llama2.c's greedy merge is quadratic in the
 * input length, so we never hand it a whole address), then `separator`. Stops after `maxTokens` tokens (and/or
 * `maxChars` characters of text) — whichever comes first.
 */
export function encodeStream(
  docs: CorpusDocument[],
  encode: (text: string) => number[],
  separator: number,
  limits: { maxTokens?: number; maxChars?: number },
): Int32Array {
  const out: number[] = [];
  let chars = 0;
  for (const doc of docs) {
    for (const para of doc.text.split(/\n\s*\n/)) {
      const p = para.trim();
      if (!p) continue;
      for (const t of encode(`${p}\n\n`)) out.push(t);
      chars += p.length;
      if ((limits.maxTokens !== undefined && out.length >= limits.maxTokens) || (limits.maxChars !== undefined && chars >= limits.maxChars)) {
        return Int32Array.from(limits.maxTokens !== undefined ? out.slice(0, limits.maxTokens) : out);
      }
    }
    out.push(separator);
  }
  return Int32Array.from(out);
}

/** GPT-2 ids of the `size − 2` most frequent tokens in `gpt2Ids` (ties by id, so the choice is deterministic). */
export function buildRestrictedVocab(gpt2Ids: ArrayLike<number>, size: number): number[] {
  const counts = new Map<number, number>();
  for (let i = 0; i < gpt2Ids.length; i++) counts.set(gpt2Ids[i]!, (counts.get(gpt2Ids[i]!) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, size - 2)
    .map(([id]) => id);
}

/** The restricted tokenizer: ids 2.. map to `vocab` (GPT-2 ids); anything else encodes to UNKNOWN. */
export function restrictedGpt2Tokenizer(vocab: number[], name: string): TextTokenizer {
  const gpt2 = gpt2Tokenizer();
  const toLocal = new Map<number, number>(vocab.map((g, i) => [g, i + 2]));
  return {
    name,
    vocabSize: vocab.length + 2,
    bos: null,
    encode: (text) => gpt2.encode(text).map((g) => toLocal.get(g) ?? UNKNOWN),
    decode: (tokens) =>
      Array.from(tokens)
        .map((t) => (t === SEPARATOR ? '\n\n' : t === UNKNOWN ? '\uFFFD' : gpt2.decode([vocab[t - 2]!])))
        .join(''),
  };
}
