/**
 * The LM benches' data (bench/lm.ts, bench/lm-cells.ts): npm corpora from @saelab/activations (split by document,
 * FNV-1a, 90/5/5), GPT-2 tokens restricted to the V−2 most frequent training tokens + <unk> (0) + <eot> (1, the
 * document separator) — data.md allows it; the <unk> rate is printed and recorded.
 */
import { EOT, type RestrictedVocab, buildVocab, toModelIds } from '../src/index.js';

export interface LmData {
  vocab: RestrictedVocab;
  trainIds: Int32Array;
  valIds: Int32Array;
  unkTrain: number;
  unkVal: number;
}

export async function loadLmData(corpus: string, V: number): Promise<LmData> {
  // The data package is loaded at run time: ssm-longhorn itself depends only on core.
  const dataPkg = '@saelab/activations';
  const act = await import(dataPkg);
  const tok = act.gpt2Tokenizer();
  const encodeSplit = (split: string): number[] => {
    const out: number[] = [];
    for (const d of act.loadCorpora(corpus, split) as { text: string }[]) out.push(...tok.encode(d.text), -1); // −1 = <eot>
    return out;
  };
  const trainRaw = encodeSplit('train');
  const valRaw = encodeSplit('validation');
  const vocab = buildVocab(tok.name, trainRaw.filter((t) => t >= 0), V);
  const mapIds = (raw: number[]) => {
    const ids = toModelIds(vocab, raw);
    raw.forEach((t, i) => t < 0 && (ids[i] = EOT));
    return ids;
  };
  const trainIds = mapIds(trainRaw);
  const valIds = mapIds(valRaw);
  const unkRate = (ids: Int32Array) => ids.reduce((s, t) => s + (t === 0 ? 1 : 0), 0) / ids.length;
  return { vocab, trainIds, valIds, unkTrain: unkRate(trainIds), unkVal: unkRate(valIds) };
}
