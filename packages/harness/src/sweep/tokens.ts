/**
 * Token streams for the sweep's language models: corpus documents (train / validation split, seeded order) encoded
 * paragraph by paragraph and concatenated with a separator token. (The default LM's restricted GPT-2 vocabulary is
 * @saelab/ssm-longhorn's `vocab.ts`.)
 */
import { type CorpusDocument, loadCorpora } from '@saelab/activations';
import { Rng } from '@saelab/core';

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
