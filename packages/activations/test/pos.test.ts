/**
 * Brown part-of-speech labels on LM tokens, checked by hand on two sentences of cn01 (lines 5–6, with a quotation
 * added) for GPT-2's BPE and the stories260K llama2.c tokenizer, and on whole files for the invariants.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  COARSE_TAGS,
  alignTagsToTokens,
  brownGenreOf,
  coarseBrownTag,
  createTokenizer,
  detagBrownText,
  detagBrownWords,
  gpt2Tokenizer,
  halfCentury,
  loadCorpus,
  readBrownRaw,
  sotuMetadata,
  tagBrownDocument,
  tokenSpans,
} from '../src/index.js';
import { modelsDir } from './helpers.js';

const RAW = "\n\n\tHe/pps certainly/rb didn't/dod* want/vb a/at wife/nn who/wps was/bedz fickle/jj as/cs Ann/np ./.\nIf/cs he/pps had/hvd married/vbn her/ppo ,/, he'd/pps+md have/hv been/ben asking/vbg for/in ``/`` trouble/nn ''/'' ./.\n";
const TOK512 = join(modelsDir, 'stories260K', 'tok512.bin');

/** "piece:tag" for every token ('-' = unlabelled). */
function aligned(tok: ReturnType<typeof gpt2Tokenizer>): string[] {
  const { text, words } = detagBrownWords(RAW);
  const ids = tok.encode(text);
  const spans = tokenSpans(text, ids, tok);
  const labels = alignTagsToTokens(words, spans);
  return ids.map((_, i) => `${text.slice(spans[i]!.start, spans[i]!.end)}:${labels[i]! >= 0 ? COARSE_TAGS[labels[i]!] : '-'}`);
}

describe('Brown coarse tags', () => {
  it('collapses suffixes, negation, contractions and foreign words', () => {
    const cases: [string, string][] = [
      ['nn-tl', 'noun'], ['np$', 'noun'], ['nns-hl', 'noun'], ['vbd', 'verb'], ['bedz*', 'verb'], ['md*', 'verb'],
      ['dod*', 'verb'], ['pps+bez', 'pronoun'], ['ppss+md', 'pronoun'], ['at', 'determiner'], ['dti', 'determiner'],
      ['in-tl', 'preposition'], ['jjt', 'adjective'], ['ql', 'adverb'], ['*', 'adverb'], ['cs', 'conjunction'],
      ['cd-tl-hl', 'number'], ['.', 'punctuation'], ["''", 'punctuation'], ['--', 'punctuation'], ['fw-nn', 'other'],
      ['to', 'other'], ['ex', 'other'], ['uh', 'other'], ['nil', 'other'],
    ];
    for (const [tag, coarse] of cases) expect([tag, coarseBrownTag(tag)]).toEqual([tag, coarse]);
  });
});

describe('Brown words → text spans', () => {
  it('rebuilds the same text as the corpus loader, with each word at its span', () => {
    const { text, words } = detagBrownWords(RAW);
    expect(text).toBe(`He certainly didn't want a wife who was fickle as Ann. If he had married her, he'd have been asking for "trouble".`);
    expect(text).toBe(detagBrownText(RAW));
    expect(words.map((w) => text.slice(w.start, w.end)).join('|')).toBe(
      `He|certainly|didn't|want|a|wife|who|was|fickle|as|Ann|.|If|he|had|married|her|,|he'd|have|been|asking|for|"|trouble|"|.`,
    );
    expect(words[2]!.tag).toBe('dod*');
  });

  it('matches the corpus text for every Brown file', () => {
    for (const doc of loadCorpus('brown')) expect(detagBrownWords(readBrownRaw(doc.id)).text === doc.text ? doc.id : `${doc.id} differs`).toBe(doc.id);
  });
});

describe('tags on the token holding a word’s last character', () => {
  it('GPT-2 BPE (hand-checked)', () => {
    expect(aligned(gpt2Tokenizer()).join(' ')).toBe(
      [
        'He:pronoun', ' certainly:adverb', ' didn:-', "'t:verb", ' want:verb', ' a:determiner', ' wife:noun', ' who:pronoun', ' was:verb',
        ' f:-', 'ickle:adjective', ' as:conjunction', ' Ann:noun', '.:punctuation', ' If:conjunction', ' he:pronoun', ' had:verb',
        ' married:verb', ' her:pronoun', ',:punctuation', ' he:-', "'d:pronoun", ' have:verb', ' been:verb', ' asking:verb',
        ' for:preposition', ' ":punctuation', 't:-', 'rou:-', 'ble:noun', '".:punctuation',
      ].join(' '),
    );
  });

  it.skipIf(!existsSync(TOK512))('llama2.c tok512 (hand-checked): the dummy-prefix space is skipped, characters pieces chain', () => {
    const got = aligned(createTokenizer(`llama2c:${TOK512}`));
    expect(got.slice(0, 8)).toEqual(['He:pronoun', ' c:-', 'er:-', 't:-', 'a:-', 'in:-', 'l:-', 'y:adverb']);
    expect(got.slice(-9)).toEqual([' for:preposition', ' ":punctuation', 't:-', 'r:-', 'ou:-', 'b:-', 'le:noun', '":punctuation', '.:punctuation']);
    // Every word is labelled exactly once: no token of this tokenizer spans two word ends.
    expect(got.filter((s) => !s.endsWith(':-')).length).toBe(detagBrownWords(RAW).words.length);
  });

  it('on a whole file the spans tile the text and nearly every word gets its tag (GPT-2)', () => {
    const doc = tagBrownDocument('ca01', gpt2Tokenizer());
    const spans = tokenSpans(doc.text, doc.tokens, gpt2Tokenizer());
    for (let i = 1; i < spans.length; i++) expect(spans[i]!.start).toBe(spans[i - 1]!.end);
    expect(spans.at(-1)!.end).toBe(doc.text.length);
    const words = detagBrownWords(readBrownRaw('ca01')).words.length;
    const labelled = doc.labels.filter((l) => l >= 0).length;
    expect(labelled).toBeLessThanOrEqual(words);
    expect(labelled).toBeGreaterThan(0.97 * words);
  });
});

describe('document metadata', () => {
  it('reads Brown genres and SOTU years / parties from the file names', () => {
    expect(brownGenreOf('cj12')).toBe('j');
    expect(() => brownGenreOf('ci01')).toThrow(/unknown genre letter 'i'/);
    expect(sotuMetadata('1790_george_washington_n')).toEqual({ year: 1790, party: 'n' });
    expect(sotuMetadata('2021_joseph_r_biden_d')).toEqual({ year: 2021, party: 'd' });
    expect(() => sotuMetadata('washington')).toThrow(/expected <year>_<name>_<party code>/);
    expect([halfCentury(1790), halfCentury(1850), halfCentury(1899), halfCentury(2021)]).toEqual(['1750-1799', '1850-1899', '1850-1899', '2000-2049']);
    const parties = new Set(loadCorpus('sotu').map((d) => sotuMetadata(d.id).party));
    expect([...parties].sort()).toEqual(['d', 'dr', 'f', 'n', 'nu', 'r', 'w', 'wd']);
  });
});
