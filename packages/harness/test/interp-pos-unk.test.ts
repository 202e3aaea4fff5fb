/** POS alignment through a restricted vocabulary (the default Longhorn LM's): <unk> tokens re-synchronise. */
import { describe, expect, it } from 'vitest';
import { COARSE_TAGS, alignTagsToTokens, detagBrownWords, gpt2Tokenizer, tokenSpans } from '@saelab/activations';
import { buildVocab, restrictTokenizer } from '@saelab/ssm-longhorn';

describe('POS alignment with <unk>', () => {
  it('an <unk> token covers the text up to the next known token; the words after it keep their tags', () => {
    const raw = '\tThe/at jury/nn praised/vbd the/at administration/nn ./.\n';
    const { text, words } = detagBrownWords(raw);
    const gpt2 = gpt2Tokenizer();
    // Vocabulary: every token of the sentence except " administration".
    const base = gpt2.encode(text);
    const admin = gpt2.encode(' administration');
    expect(admin.length).toBe(1);
    const vocab = buildVocab('gpt2', base.filter((t) => t !== admin[0]), 64);
    const tok = restrictTokenizer(gpt2, vocab);
    const ids = tok.encode(text);
    expect(tok.decode(ids)).toContain('<unk>');
    const spans = tokenSpans(text, ids, tok);
    expect(spans.map((s) => text.slice(s.start, s.end))).toEqual(['The', ' jury', ' praised', ' the', ' administration', '.']);
    const labels = Array.from(alignTagsToTokens(words, spans), (l) => COARSE_TAGS[l]);
    expect(labels).toEqual(['determiner', 'noun', 'verb', 'determiner', 'noun', 'punctuation']);
  });
});
