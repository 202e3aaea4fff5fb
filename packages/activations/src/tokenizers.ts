/**
 * Text tokenizers behind one small interface, so the harvester does not care which it uses:
 *  - `gpt2`: GPT-2's byte-level BPE (r50k_base) from `gpt-tokenizer` (offline, vocabulary bundled); BOS is
 *    <|endoftext|> = 50256, as GPT-2 uses it between documents. Special-token text in a corpus is encoded as
 *    ordinary text, never as the special token.
 *  - `llama2c:PATH`: a llama2.c tokenizer file (sentencepiece-style, see llama2c/tokenizer.ts); BOS = 1.
 */
import { decode as gpt2Decode, encode as gpt2Encode, vocabularySize as gpt2VocabSize } from 'gpt-tokenizer/encoding/r50k_base';
import { LLAMA2C_BOS, Llama2cTokenizer } from './llama2c/tokenizer.js';

export interface TextTokenizer {
  /** How the tokenizer was specified (stored in manifests): "gpt2" or "llama2c:PATH". */
  readonly name: string;
  readonly vocabSize: number;
  readonly bos: number | null;
  /** Tokens for `text`, without BOS. */
  encode(text: string): number[];
  decode(tokens: ArrayLike<number>): string;
}

export const GPT2_EOT = 50256;

export function gpt2Tokenizer(): TextTokenizer {
  const none = new Set<string>();
  return {
    name: 'gpt2',
    vocabSize: gpt2VocabSize,
    bos: GPT2_EOT,
    encode: (text) => gpt2Encode(text, { allowedSpecial: none, disallowedSpecial: none }),
    decode: (tokens) => gpt2Decode(Array.from(tokens)),
  };
}

export function llama2cTextTokenizer(path: string, vocabSize?: number): TextTokenizer {
  const tok = Llama2cTokenizer.load(path, vocabSize);
  return {
    name: `llama2c:${path}`,
    vocabSize: tok.vocabSize,
    bos: LLAMA2C_BOS,
    // llama2.c's encode adds the dummy-prefix space itself; BOS is added by the caller.
    encode: (text) => tok.encode(text, false, false),
    decode: (tokens) => tok.decode(tokens, LLAMA2C_BOS),
  };
}

/** "gpt2" or "llama2c:PATH". */
export function createTokenizer(spec: string, vocabSize?: number): TextTokenizer {
  if (spec === 'gpt2') return gpt2Tokenizer();
  if (spec.startsWith('llama2c:') && spec.length > 8) return llama2cTextTokenizer(spec.slice(8), vocabSize);
  throw new Error(`tokenizer "${spec}": expected gpt2 or llama2c:PATH`);
}
