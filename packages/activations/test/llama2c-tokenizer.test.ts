import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '@saelab/core';
import { Llama2cTokenizer } from '../src/llama2c/tokenizer.js';
import { haveStories, smallTokenizer, stories } from './helpers.js';

/** run.c's encode, transcribed literally (O(n²) rescanning merge loop), as the reference. */
function referenceEncode(t: Llama2cTokenizer, text: string, bos: boolean, eos: boolean): number[] {
  const key = (id: number) => Buffer.from(t.pieces[id]!).toString('latin1');
  const lookup = (s: string) => {
    for (let i = 0; i < t.vocabSize; i++) if (key(i) === s) return i;
    return -1;
  };
  const tokens: number[] = [];
  if (bos) tokens.push(1);
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > 0) tokens.push(lookup(' '));
  let buf: number[] = [];
  for (let c = 0; c < bytes.length; c++) {
    if ((bytes[c]! & 0xc0) !== 0x80) buf = [];
    buf.push(bytes[c]!);
    const nextByte = c + 1 < bytes.length ? bytes[c + 1]! : 0;
    if ((nextByte & 0xc0) === 0x80 && buf.length < 4) continue;
    const id = lookup(Buffer.from(buf).toString('latin1'));
    if (id !== -1) tokens.push(id);
    else for (const b of buf) tokens.push(b + 3);
    buf = [];
  }
  for (;;) {
    let bestScore = -1e10;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = lookup(key(tokens[i]!) + key(tokens[i + 1]!));
      if (id !== -1 && t.scores[id]! > bestScore) {
        bestScore = t.scores[id]!;
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx === -1) break;
    tokens.splice(bestIdx, 2, bestId);
  }
  if (eos) tokens.push(2);
  return tokens;
}

function randomText(rng: Rng, alphabet: string[], n: number): string {
  return Array.from({ length: n }, () => alphabet[rng.int(alphabet.length)]).join('');
}

describe('llama2.c tokenizer (self-built vocabulary)', () => {
  const tok = smallTokenizer(3);

  it('serialises and parses back to the same vocabulary', () => {
    const back = Llama2cTokenizer.fromBytes(tok.toBytes());
    expect(back.vocabSize).toBe(tok.vocabSize);
    expect(back.maxTokenLength).toBe(tok.maxTokenLength);
    expect(Array.from(back.scores)).toEqual(Array.from(tok.scores));
    back.pieces.forEach((p, i) => expect(Buffer.from(p).equals(Buffer.from(tok.pieces[i]!))).toBe(true));
  });

  it('encode matches the literal run.c algorithm (merges, ties, byte fallback)', () => {
    const rng = new Rng(7);
    const alphabet = ['a', 'b', 'c', 'd', 'e', ' ', 'é', 'ü', 'z', '日', '\n'];
    for (let trial = 0; trial < 150; trial++) {
      const text = randomText(rng, alphabet, rng.int(30));
      expect(tok.encode(text, true, trial % 2 === 0), JSON.stringify(text)).toEqual(referenceEncode(tok, text, true, trial % 2 === 0));
    }
  });

  it('decode(encode(text)) round-trips, including bytes that fall back to <0xXX>', () => {
    const rng = new Rng(8);
    const alphabet = ['a', 'b', 'c', ' ', 'é', '日', '🙂', '\t'];
    for (let trial = 0; trial < 50; trial++) {
      const text = randomText(rng, alphabet, 1 + rng.int(25));
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
  });

  it('decodePiece strips the leading space after BOS and maps <0xXX> to the byte', () => {
    const space = tok.encode('a', false)[0]!; // the dummy-prefix merge " a" or " "
    expect(Buffer.from(tok.decodePiece(1, space)).toString()[0]).not.toBe(' ');
    expect(Array.from(tok.decodePiece(5, 0x41 + 3))).toEqual([0x41]);
    expect(Array.from(Llama2cTokenizer.safePrintable(Uint8Array.of(0x07)))).toEqual([]); // BEL is not printed
    expect(Array.from(Llama2cTokenizer.safePrintable(Uint8Array.of(0x0a)))).toEqual([0x0a]);
  });

  it('rejects truncated files with a clear error', () => {
    const bytes = tok.toBytes();
    expect(() => Llama2cTokenizer.fromBytes(bytes.subarray(0, bytes.length - 3), undefined, 'x.bin')).toThrow(/x\.bin.*token/);
    expect(() => Llama2cTokenizer.fromBytes(bytes, tok.vocabSize + 5, 'x.bin')).toThrow(/vocab_size/);
  });
});

describe.skipIf(!haveStories)('llama2.c tokenizer (stories260K tok512.bin)', () => {
  it('matches the literal run.c encode and round-trips real text', () => {
    const tok = Llama2cTokenizer.load(join(stories, 'tok512.bin'), 512);
    const texts = ['Once upon a time, there was a little girl named Lily.', 'Hello  world\n\té 日本 🙂!', 'x'];
    for (const text of texts) {
      expect(tok.encode(text)).toEqual(referenceEncode(tok, text, true, false));
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
  });
});
