import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SPLIT_FRACTIONS, detagBrownSentence, loadCorpora, loadCorpus, splitOf } from '../src/corpora.js';
import { createTokenizer, gpt2Tokenizer } from '../src/tokenizers.js';
import { haveStories, stories } from './helpers.js';

describe('corpora', () => {
  it('loads all SOTU addresses and Brown texts as documents', () => {
    const sotu = loadCorpus('sotu');
    const brown = loadCorpus('brown');
    expect(sotu.length).toBe(233);
    expect(brown.length).toBe(500);
    expect(sotu[0]!.text).toMatch(/^Fellow-Citizens of the Senate/);
    // Tags are gone and punctuation is re-attached.
    expect(brown[0]!.text.startsWith('The Fulton County Grand Jury said Friday an investigation of')).toBe(true);
    expect(brown[0]!.text).not.toMatch(/\/(at|nn|np)\b/);
    expect(brown[0]!.text).toContain('"no evidence"');
  });

  it('rebuilds running text from word/TAG tokens', () => {
    expect(detagBrownSentence('The/at jury/nn ,/, ``/`` said/vbd it/pps ./.')).toBe('The jury, "said it.');
    expect(detagBrownSentence("He/pps didn't/dod* go/vb ''/'' 1/2/cd ./.")).toBe('He didn\'t go" 1/2.');
  });

  it('splits by document, deterministically, with roughly the documented fractions, no overlap', () => {
    const all = loadCorpora('sotu+brown');
    const parts = (['train', 'validation', 'test'] as const).map((s) => loadCorpora('sotu+brown', s));
    expect(parts.reduce((n, p) => n + p.length, 0)).toBe(all.length);
    const ids = new Set(parts.flat().map((d) => `${d.corpus}/${d.id}`));
    expect(ids.size).toBe(all.length);
    expect(parts[0]!.length / all.length).toBeGreaterThan(SPLIT_FRACTIONS.train - 0.05);
    expect(parts[1]!.length).toBeGreaterThan(0);
    expect(parts[2]!.length).toBeGreaterThan(0);
    for (const d of parts[1]!) expect(splitOf(d.corpus, d.id)).toBe('validation');
  });

  it('loads nlp-corpus: one document per sentence file, sentences one per line, split by file', () => {
    const all = loadCorpus('nlp-corpus');
    expect(all.length).toBe(100);
    expect(all.every((d) => d.corpus === 'nlp-corpus' && /^builds\/doc-\d+\.json$/.test(d.id))).toBe(true);
    expect(all.reduce((n, d) => n + d.text.split('\n').length, 0)).toBeGreaterThan(90_000); // "100k sentences"
    const parts = (['train', 'validation', 'test'] as const).map((s) => loadCorpus('nlp-corpus', s));
    expect(parts.map((p) => p.length)).toEqual([89, 7, 4]);
    expect(new Set(parts.flat().map((d) => d.id)).size).toBe(100);
    expect(loadCorpora('sotu+nlp-corpus', 'test').some((d) => d.corpus === 'nlp-corpus')).toBe(true);
  });

  it('rejects unknown corpora clearly', () => {
    expect(() => loadCorpora('sotu+wiki')).toThrow(/unknown corpus "wiki" in "sotu\+wiki": expected sotu, brown, nlp-corpus/);
  });
});

describe('tokenizers', () => {
  it('GPT-2 BPE round-trips real text and treats special-token text as text', () => {
    const tok = gpt2Tokenizer();
    expect(tok.vocabSize).toBe(50257);
    const text = loadCorpus('brown')[3]!.text.slice(0, 2000) + ' <|endoftext|> é 日本';
    const ids = tok.encode(text);
    expect(ids).not.toContain(50256);
    expect(tok.decode(ids)).toBe(text);
    expect(tok.encode('Hello world')).toEqual([15496, 995]); // GPT-2's published ids for this string
  });

  it.skipIf(!haveStories)('llama2.c tok512 round-trips corpus text', () => {
    const tok = createTokenizer(`llama2c:${join(stories, 'tok512.bin')}`, 512);
    const text = loadCorpus('sotu')[5]!.text.slice(0, 3000);
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('rejects unknown tokenizer specs', () => {
    expect(() => createTokenizer('bert')).toThrow(/gpt2 or llama2c:PATH/);
  });
});
