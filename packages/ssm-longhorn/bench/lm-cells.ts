/**
 * Language modelling with every model given the same chance (issue 14, item 4): for each model × lr × seed, train
 * on a fixed token budget of the npm corpora (bench/lm-data.ts), then measure
 *  - validation loss on windows of the validation split: the lr is chosen on the first half of the windows (mean
 *    over seeds) and the loss reported on the second half (disjoint), mean ± sd over seeds;
 *  - loss by position on validation windows of f·L tokens (f = 1, 4 by default: the paper's extrapolation claim);
 *  - wall-clock per token: training (this run's steps) and, for the recurrent models, one-token decoding.
 * Models: the scan transitions and `transformer` (LLaMA-style, heads of 32, SwiGLU width matched to the SSM's
 * parameter count at the same d_model / layers).
 *
 *   npx tsx packages/ssm-longhorn/bench/lm-cells.ts --corpus sotu+brown --models longhorn-diag,mamba,transformer
 *     --tokens 5000000 [--lrs 1e-3,3e-3] [--seeds 0,1,2] [--dModel 128] [--layers 4] [--threads 1]
 *
 * Resume and caching as bench/mqar-cells.ts: finished runs are rows of results/<name>.json (skipped on rerun),
 * unfinished ones resume from runs/<name>/<run>/ (checkpoint every 50 steps).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type GemmEngine, Rng, createOrtEngine, defaultEngine, writeFileAtomic } from '@saelab/core';
import {
  EOT, IGNORE, LonghornLM, TRANSITIONS, type Transition, TransformerLM, type TrainableLM, matchedMlpHidden, modelStats, nextTokenTargets, rowNll,
  saveModel, saveVocab, setScanThreads, train, transformerParamCount,
} from '../src/index.js';
import { loadLmData } from './lm-data.js';

const { values: a } = parseArgs({
  options: {
    corpus: { type: 'string', default: 'sotu+brown' },
    models: { type: 'string', default: 'longhorn-diag,mamba,transformer' },
    tokens: { type: 'string', default: '5000000' },
    vocab: { type: 'string', default: '4096' },
    dModel: { type: 'string', default: '128' },
    layers: { type: 'string', default: '4' },
    seqLen: { type: 'string', default: '256' },
    batch: { type: 'string', default: '16' },
    lrs: { type: 'string', default: '1e-3,3e-3' },
    seeds: { type: 'string', default: '0,1,2' },
    evalWindows: { type: 'string', default: '64' },
    posFactors: { type: 'string', default: '1,4' },
    decodeTokens: { type: 'string', default: '64' },
    name: { type: 'string', default: 'lm-cells' },
    threads: { type: 'string' },
    summary: { type: 'boolean', default: false },
  },
});
const MODELS = [...TRANSITIONS, 'transformer'] as const;
type ModelId = (typeof MODELS)[number];
const models = a.models!.split(',') as ModelId[];
for (const m of models) if (!(MODELS as readonly string[]).includes(m)) throw new Error(`unknown model '${m}' (expected one of ${MODELS.join(', ')})`);
const V = Number(a.vocab);
const L = Number(a.seqLen);
const B = Number(a.batch);
const dModel = Number(a.dModel);
const nLayers = Number(a.layers);
const steps = Math.max(1, Math.round(Number(a.tokens) / (B * L)));
const posFactors = a.posFactors!.split(',').map(Number);
const threads = a.threads === undefined ? undefined : Number(a.threads);
if (threads !== undefined) setScanThreads(threads);

interface Row {
  corpus: string;
  model: ModelId;
  dModel: number;
  nLayers: number;
  lr: number;
  seed: number;
  params: number;
  tokens: number;
  steps: number;
  selectLoss: number;
  valLoss: number;
  /** factor → mean loss per position bin of windows f·L long ([0, L/4), [L/4, L), [L, 2L), …). */
  lossByPos: Record<string, { lo: number; hi: number; loss: number }[]>;
  trainTokPerSec: number;
  trainTokPerCpuSec: number;
  decodeTokPerSec: number | null;
}

const resultsDir = join(import.meta.dirname, '..', 'results');
const jsonPath = join(resultsDir, `${a.name}.json`);
const readRows = (): Row[] => (existsSync(jsonPath) ? (JSON.parse(readFileSync(jsonPath, 'utf8')).rows as Row[]) : []);
const key = (r: Pick<Row, 'corpus' | 'model' | 'dModel' | 'nLayers' | 'lr' | 'seed' | 'tokens'>) => `${r.corpus}|${r.model}|${r.dModel}|${r.nLayers}|${r.tokens}|${r.lr}|${r.seed}`;

function createModel(id: ModelId, seed: number, engine: GemmEngine): TrainableLM & { forward: (t: Int32Array, b: number, l: number) => Promise<{ logits?: { data: Float32Array } }> } {
  if (id !== 'transformer') return LonghornLM.create({ vocabSize: V, dModel, nLayers, dState: 16, variant: id as Transition, bos: EOT }, seed, engine);
  const target = modelStats(LonghornLM.create({ vocabSize: V, dModel, nLayers, dState: 16 }, 0, engine).config).params;
  const base = { vocabSize: V, dModel, nLayers, nHeads: Math.max(1, dModel / 32) };
  return TransformerLM.create({ ...base, mlpHidden: matchedMlpHidden(base, target) }, seed, engine);
}

/** Mean next-token loss of windows [from, to) of length Lw from the validation stream, and per-position sums. */
async function windowLoss(lm: ReturnType<typeof createModel>, ids: Int32Array, Lw: number, from: number, to: number): Promise<{ mean: number; perPos: Float64Array; count: Float64Array }> {
  const perPos = new Float64Array(Lw);
  const count = new Float64Array(Lw);
  for (let w = from; w < to; w += B) {
    const nb = Math.min(B, to - w);
    const tokens = ids.slice(w * Lw, (w + nb) * Lw);
    const targets = nextTokenTargets(tokens, nb, Lw);
    const { logits } = await lm.forward(tokens, nb, Lw);
    for (let r = 0; r < nb * Lw; r++) {
      if (targets[r] === IGNORE) continue;
      perPos[r % Lw] += rowNll(logits!.data, V, r, targets[r]!);
      count[r % Lw]++;
    }
  }
  const mean = perPos.reduce((s, x) => s + x, 0) / count.reduce((s, x) => s + x, 0);
  return { mean, perPos, count };
}

async function runOne(engine: GemmEngine, data: Awaited<ReturnType<typeof loadLmData>>, model: ModelId, lr: number, seed: number): Promise<Row> {
  const lm = createModel(model, seed, engine);
  const dir = join(import.meta.dirname, '..', 'runs', a.name!, `${a.corpus}-${model}-d${dModel}-l${nLayers}-t${steps * B * L}-lr${lr}-s${seed}`);
  const stream = (step: number) => {
    const rng = new Rng((seed * 1_000_003 + step) >>> 0);
    const tokens = new Int32Array(B * L);
    for (let b = 0; b < B; b++) {
      const s = rng.int(data.trainIds.length - L - 1);
      tokens.set(data.trainIds.subarray(s, s + L), b * L);
    }
    return { tokens, targets: nextTokenTargets(tokens, B, L), batch: B, seqLen: L };
  };
  console.error(`\n${a.corpus} ${model} d_model=${dModel} layers=${nLayers} lr=${lr} seed=${seed}: ${steps} steps`);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const logs = await train(lm, { lr, warmupSteps: Math.max(1, Math.round(steps * 0.05)), totalSteps: steps, weightDecay: 0.1, checkpointEvery: 50 }, { data: stream, dir, progress: true });
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  await saveModel(dir, lm);
  await saveVocab(dir, data.vocab);
  const nWin = Math.min(Number(a.evalWindows), Math.floor(data.valIds.length / L));
  const half = Math.floor(nWin / 2);
  const select = await windowLoss(lm, data.valIds, L, 0, half);
  const report = await windowLoss(lm, data.valIds, L, half, nWin);
  const lossByPos: Row['lossByPos'] = {};
  for (const f of posFactors) {
    const Lw = f * L;
    const n = Math.min(Math.max(1, Math.floor(nWin / f)), Math.floor(data.valIds.length / Lw));
    const r = await windowLoss(lm, data.valIds, Lw, 0, n);
    const edges = [0, L / 4, L, 2 * L, 4 * L, 8 * L].filter((e) => e < Lw).concat([Lw]);
    lossByPos[String(f)] = edges.slice(1).map((hi, i) => {
      const lo = edges[i]!;
      let [s, c] = [0, 0];
      for (let t = lo; t < hi; t++) [s, c] = [s + r.perPos[t]!, c + r.count[t]!];
      return { lo, hi, loss: s / c };
    });
  }
  let decodeTokPerSec: number | null = null;
  if (lm instanceof LonghornLM) {
    const dec = lm.decoder(1);
    const n = Number(a.decodeTokens);
    const d0 = performance.now();
    for (let t = 0; t < n; t++) await dec.step(Int32Array.of(data.valIds[t]!));
    decodeTokPerSec = n / ((performance.now() - d0) / 1000);
  }
  const ran = logs.length;
  const row: Row = {
    corpus: a.corpus!, model, dModel, nLayers, lr, seed, params: lm instanceof TransformerLM ? transformerParamCount(lm.config) : modelStats((lm as LonghornLM).config).params,
    tokens: steps * B * L, steps, selectLoss: select.mean, valLoss: report.mean, lossByPos,
    trainTokPerSec: ran ? (ran * B * L) / wall : NaN, trainTokPerCpuSec: ran ? (ran * B * L) / ((cpu.user + cpu.system) / 1e6) : NaN, decodeTokPerSec,
  };
  console.error(`  → val loss ${row.valLoss.toFixed(4)} (select ${row.selectLoss.toFixed(4)}), ${row.trainTokPerSec.toFixed(0)} train tok/s`);
  return row;
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const sd = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((s, x) => s + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));

async function writeResults(rows: Row[]): Promise<void> {
  const merged = new Map(readRows().map((r) => [key(r), r]));
  for (const r of rows) merged.set(key(r), r);
  const all = [...merged.values()];
  const groups = new Map<string, Row[]>();
  for (const r of all) groups.set(`${r.corpus}|${r.model}|${r.dModel}|${r.nLayers}|${r.tokens}`, [...(groups.get(`${r.corpus}|${r.model}|${r.dModel}|${r.nLayers}|${r.tokens}`) ?? []), r]);
  const cells = [...groups.values()].map((rs) => {
    const lrs = [...new Set(rs.map((r) => r.lr))].sort((x, y) => x - y);
    const best = lrs.reduce((p, c) => (mean(rs.filter((r) => r.lr === c).map((r) => r.selectLoss)) < mean(rs.filter((r) => r.lr === p).map((r) => r.selectLoss)) ? c : p));
    const b = rs.filter((r) => r.lr === best);
    return { ...b[0]!, lrsRun: lrs, lr: best, seeds: b.map((r) => r.seed), val: b.map((r) => r.valLoss), rows: b };
  });
  await writeFileAtomic(jsonPath, JSON.stringify({ cells: cells.map(({ rows: _, ...c }) => c), rows: all }, null, 2) + '\n');
  const fs = [...new Set(all.flatMap((r) => Object.keys(r.lossByPos)))];
  const lines = [
    `# Language modelling, every model the same budget (${a.name})`,
    '',
    'GPT-2 tokens restricted to the V−2 most frequent training tokens + <unk> + <eot>; document-level split 90/5/5 (as @saelab/activations); ' +
      'AdamW (wd 0.1), 5% warm-up + cosine, batch × seq as run. lr chosen on the first half of the validation windows (mean over seeds), loss reported on the second half. Machine: shared 2-core CPU (timings are noisy: other jobs ran).',
    '',
    '| corpus | model | d_model | layers | params | tokens | lrs run | lr | seeds | val loss (mean ± sd) | ' + fs.map((f) => `loss by position @${f}L`).join(' | ') + ' | train tok/s (wall) | decode tok/s |',
    '|---|---|---|---|---|---|---|---|---|---|' + fs.map(() => '---|').join('') + '---|---|',
    ...cells.map((c) => `| ${c.corpus} | ${c.model} | ${c.dModel} | ${c.nLayers} | ${c.params} | ${c.tokens} | ${c.lrsRun.join(', ')} | ${c.lr} | ${c.seeds.length} | ${mean(c.val).toFixed(3)} ± ${sd(c.val).toFixed(3)} | ` +
      fs.map((f) => (c.lossByPos[f] ?? []).map((bin) => `[${bin.lo}, ${bin.hi}) ${mean(c.rows.map((r) => r.lossByPos[f]!.find((x) => x.lo === bin.lo)!.loss)).toFixed(2)}`).join(', ')).join(' | ') +
      ` | ${mean(c.rows.map((r) => r.trainTokPerSec)).toFixed(0)} | ${c.decodeTokPerSec === null ? 'n/a (no recurrent decoder)' : mean(c.rows.map((r) => r.decodeTokPerSec!)).toFixed(0)} |`),
    '',
  ];
  await writeFileAtomic(join(resultsDir, `${a.name}.md`), lines.join('\n'));
}

if (a.summary) await writeResults([]);
else {
  const engine = threads === undefined ? await defaultEngine() : createOrtEngine({ threads });
  const data = await loadLmData(a.corpus!, V);
  console.error(`${a.corpus}: ${data.trainIds.length} train / ${data.valIds.length} validation tokens, vocab ${V} (unk: train ${(100 * data.unkTrain).toFixed(2)}%, val ${(100 * data.unkVal).toFixed(2)}%)`);
  const done: Row[] = [];
  for (const model of models) {
    for (const lr of a.lrs!.split(',').map(Number)) {
      for (const seed of a.seeds!.split(',').map(Number)) {
        if (readRows().some((r) => key(r) === key({ corpus: a.corpus!, model, dModel, nLayers, lr, seed, tokens: steps * B * L }))) continue;
        done.push(await runOne(engine, data, model, lr, seed));
        await writeResults(done);
      }
    }
  }
  await writeResults(done);
}
