/**
 * Language modelling on the npm corpora: Longhorn vs Mamba at (nearly) matched parameter count, validation loss
 * and perplexity after a fixed token budget. Corpora and split come from @saelab/activations (split by document,
 * FNV-1a, 90/5/5); text is GPT-2 tokenized and the vocabulary restricted to the V−2 most frequent training tokens
 * plus <unk> and <eot> (document separator) — documented in the results (docs/specs/data.md allows it).
 *
 *   npx tsx packages/ssm-longhorn/bench/lm.ts [--corpus sotu] [--variants longhorn-diag,mamba] [--tokens 200000]
 *     [--vocab 4096] [--dModel 128] [--layers 4] [--seqLen 256] [--batch 16] [--lr 3e-3] [--threads 1]
 *
 * Trained models are saved under runs/lm-<corpus>-<variant>/ (a Longhorn model folder: model.safetensors +
 * config.json + vocab.json), usable as an activation source. Results: results/lm.{json,md}.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Rng, createOrtEngine, defaultEngine, writeFileAtomic } from '@saelab/core';
import { EOT, IGNORE, LonghornLM, type Transition, modelStats, nextTokenTargets, rowNll, saveModel, saveVocab, setScanThreads, train } from '../src/index.js';
import { loadLmData } from './lm-data.js';

const { values: a } = parseArgs({
  options: {
    corpus: { type: 'string', default: 'sotu' },
    variants: { type: 'string', default: 'longhorn-diag,mamba' },
    tokens: { type: 'string', default: '200000' },
    vocab: { type: 'string', default: '4096' },
    dModel: { type: 'string', default: '128' },
    layers: { type: 'string', default: '4' },
    seqLen: { type: 'string', default: '256' },
    batch: { type: 'string', default: '16' },
    lr: { type: 'string', default: '3e-3' },
    evalWindows: { type: 'string', default: '64' },
    seed: { type: 'string', default: '0' },
    /** Threads for the GEMMs and the scan (default: all cores); 1 when several runs share the machine. */
    threads: { type: 'string' },
  },
});
const threads = a.threads === undefined ? undefined : Number(a.threads);
if (threads !== undefined) setScanThreads(threads);
const engine = threads === undefined ? await defaultEngine() : createOrtEngine({ threads });
const V = Number(a.vocab);
const L = Number(a.seqLen);
const B = Number(a.batch);
const steps = Math.max(1, Math.round(Number(a.tokens) / (B * L)));

const { vocab, trainIds, valIds, unkTrain, unkVal } = await loadLmData(a.corpus!, V);
console.error(`${a.corpus}: ${trainIds.length} train / ${valIds.length} validation tokens, vocab ${V} (unk: train ${(100 * unkTrain).toFixed(2)}%, val ${(100 * unkVal).toFixed(2)}%), ${steps} steps`);

/** Random windows of the training stream, seeded by the step (exact resume). */
const data = (step: number) => {
  const rng = new Rng((Number(a.seed) * 1_000_003 + step) >>> 0);
  const tokens = new Int32Array(B * L);
  for (let b = 0; b < B; b++) {
    const s = rng.int(trainIds.length - L - 1);
    tokens.set(trainIds.subarray(s, s + L), b * L);
  }
  return { tokens, targets: nextTokenTargets(tokens, B, L), batch: B, seqLen: L };
};

async function validationLoss(lm: LonghornLM): Promise<number> {
  const n = Math.min(Number(a.evalWindows), Math.floor(valIds.length / L));
  let total = 0;
  let count = 0;
  for (let s = 0; s < n; s += B) {
    const nb = Math.min(B, n - s);
    const tokens = valIds.slice(s * L, (s + nb) * L);
    const targets = nextTokenTargets(tokens, nb, L);
    const { logits } = await lm.forward(tokens, nb, L);
    for (let r = 0; r < nb * L; r++) {
      if (targets[r] === IGNORE) continue;
      total += rowNll(logits!.data, V, r, targets[r]!);
      count++;
    }
  }
  return total / count;
}

const resultsPath = join(import.meta.dirname, '..', 'results', 'lm.json');
// Re-read before every write: runs of other variants may be training in parallel processes.
const readRows = (): Record<string, unknown>[] => (existsSync(resultsPath) ? JSON.parse(readFileSync(resultsPath, 'utf8')).rows : []);
for (const variant of a.variants!.split(',') as Transition[]) {
  const cfg = { vocabSize: V, dModel: Number(a.dModel), nLayers: Number(a.layers), dState: 16, variant, bos: EOT };
  const lm = LonghornLM.create(cfg, Number(a.seed), engine);
  const dir = join(import.meta.dirname, '..', 'runs', `lm-${a.corpus}-${variant}`);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const logs = await train(lm, { lr: Number(a.lr), warmupSteps: Math.max(1, Math.round(steps * 0.05)), totalSteps: steps, weightDecay: 0.1, checkpointEvery: 50 }, { data, dir, progress: true });
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  await saveModel(dir, lm);
  await saveVocab(dir, vocab);
  const valLoss = await validationLoss(lm);
  const row = {
    corpus: a.corpus, ...cfg, seqLen: L, batch: B, lr: Number(a.lr), steps, tokens: steps * B * L,
    params: modelStats(lm.config).params, stateFloatsPerLayer: modelStats(lm.config).stateFloatsPerLayer,
    finalTrainLoss: logs.at(-1)?.loss ?? null, valLoss, valPerplexity: Math.exp(valLoss),
    wallSeconds: wall, cpuSeconds: (cpu.user + cpu.system) / 1e6, modelDir: `runs/lm-${a.corpus}-${variant}`,
  };
  console.error(`${variant}: val loss ${valLoss.toFixed(4)} (ppl ${row.valPerplexity.toFixed(1)})`);
  const rows = readRows();
  const i = rows.findIndex((r) => r.corpus === row.corpus && r.variant === row.variant && r.tokens === row.tokens && r.dModel === row.dModel);
  if (i >= 0) rows[i] = row;
  else rows.push(row);
  await writeFileAtomic(resultsPath, JSON.stringify({ note: `GPT-2 tokens restricted to the top V−2 training tokens + <unk> + <eot>; split by document (90/5/5) as @saelab/activations`, rows }, null, 2) + '\n');
  const md = [
    '# Language modelling (npm corpora)',
    '',
    'GPT-2 tokenization restricted to the V−2 most frequent training tokens + <unk> + <eot>; document-level split 90/5/5 (as @saelab/activations); validation loss on the first windows of the validation split. Machine: shared 2-core CPU.',
    '',
    '| corpus | variant | d_model | layers | params | state floats/layer | tokens | val loss (nats) | val ppl | CPU s |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r: any) => `| ${r.corpus} | ${r.variant} | ${r.dModel} | ${r.nLayers} | ${r.params} | ${r.stateFloatsPerLayer} | ${r.tokens} | ${r.valLoss.toFixed(4)} | ${r.valPerplexity.toFixed(1)} | ${r.cpuSeconds.toFixed(0)} |`),
    '',
  ];
  await writeFileAtomic(join(import.meta.dirname, '..', 'results', 'lm.md'), md.join('\n'));
}
