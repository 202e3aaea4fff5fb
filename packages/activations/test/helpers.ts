/** Shared test fixtures: where stories260K lives, and a small self-built llama2.c tokenizer. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '@saelab/core';
import { Llama2cTokenizer } from '../src/llama2c/tokenizer.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const modelsDir = process.env.SAELAB_MODELS_DIR ?? join(repoRoot, '../shared/models');
export const stories = join(modelsDir, 'stories260K');
export const haveStories = existsSync(join(stories, 'stories260K.bin')) && existsSync(join(stories, 'tok512.bin'));
export const storiesSkipMessage = `stories260K not found at ${stories} (set SAELAB_MODELS_DIR): skipping tests that need it`;
if (!haveStories) console.warn(storiesSkipMessage);

/**
 * A sentencepiece-like vocabulary: <unk>, <s>, </s>, 256 byte tokens, then single characters and multi-character
 * merges with random scores — enough to exercise merging, ties and byte fallback.
 */
export function smallTokenizer(seed = 1): Llama2cTokenizer {
  const rng = new Rng(seed);
  const enc = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
  const pieces: Uint8Array[] = [enc('<unk>'), enc('\n<s>\n'), enc('\n</s>\n')];
  const scores: number[] = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    pieces.push(enc(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
    scores.push(0);
  }
  const words = [' ', 'a', 'b', 'c', 'd', 'e', 'é', ' a', ' b', 'ab', 'bc', 'abc', ' ab', 'cd', 'de', 'cde', ' abc', 'aa', 'aaa', ' c', 'ba'];
  for (const w of words) {
    pieces.push(enc(w));
    // Coarse scores so that ties happen.
    scores.push(-rng.int(4));
  }
  return new Llama2cTokenizer(pieces, Float32Array.from(scores), 8);
}
