/**
 * MQAR as Zoology defines it (Arora et al. 2023, HazyResearch/zoology `multiquery_ar`), every model given the same
 * chance: for each model × (L, N) × lr × seed, train a 2-layer model on fresh seeded examples (early stop on a
 * validation set), then test at L and extrapolate to f·L with f·N pairs (f = 2, 4, 8: the query gaps scale with
 * the length, so queries really land beyond the trained distances), with accuracy split by the query's distance
 * from its key. A cell's lr is the one with the best mean *validation* accuracy over its seeds (validation and
 * test sets are disjoint draws).
 *
 *   npx tsx packages/ssm-longhorn/bench/mqar-cells.ts --models longhorn-diag,mamba,transformer --configs 64x4
 *     [--dModel 64] [--lrs 1e-2] [--seeds 0,1,2] [--steps 1500] [--batch 32] [--vocab auto] [--name mqar-cells]
 *     [--threads 1] [--summary]
 *   (or `npx nx run ssm-longhorn:mqar-cells -- --models …`)
 *
 * Models: the scan transitions (longhorn-diag, longhorn-exact, mamba, mamba2, deltanet, gated-deltanet),
 * `mamba-dt0.5` (Mamba with Δ initialised log-uniform in [0.25, 1], around Longhorn's initial ε ≈ ½ — the dt-init
 * ablation) and `transformer` (LLaMA-style, 1 head as Zoology's MHA, SwiGLU width matched to Longhorn's parameters).
 * Vocabulary: `auto` = the smallest power of two > L and ≥ 128 (Zoology: V = 8192 > L always).
 *
 * Resume and caching: every finished run is a row of results/<name>.json (rerunning skips it); an unfinished run
 * resumes from its checkpoint in runs/<name>/<run>/ (written every 250 steps; the data stream is a function of the
 * step, so the resumed run is the run). Writes results/<name>.{json,md,svg} atomically after every run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type GemmEngine, Rng, createOrtEngine, defaultEngine, writeFileAtomic } from '@saelab/core';
import {
  LonghornLM, TRANSITIONS, type Transition, TransformerLM, type TrainableLM, type GapBin, type LogitsModel, matchedMlpHidden,
  modelStats, mqarBatch, mqarEvaluate, mqarStream, parseConfig, saveModel, setScanThreads, train, transformerParamCount, zoologyVocab,
} from '../src/index.js';

const { values: a } = parseArgs({
  options: {
    models: { type: 'string', default: 'longhorn-diag' },
    configs: { type: 'string', default: '64x4' },
    dModel: { type: 'string', default: '64' },
    lrs: { type: 'string', default: '1e-2' },
    seeds: { type: 'string', default: '0,1,2' },
    steps: { type: 'string', default: '1500' },
    batch: { type: 'string', default: '32' },
    vocab: { type: 'string', default: 'auto' },
    evalEvery: { type: 'string', default: '100' },
    evalExamples: { type: 'string', default: '256' },
    /** Test examples at each extrapolated length (f·L is f× the tokens to run). */
    extrapExamples: { type: 'string', default: '128' },
    target: { type: 'string', default: '0.99' },
    extrap: { type: 'string', default: '2,4,8' },
    name: { type: 'string', default: 'mqar-cells' },
    threads: { type: 'string' },
    /** Only rewrite the tables from the JSON. */
    summary: { type: 'boolean', default: false },
  },
});

export const MODELS = [...TRANSITIONS, 'mamba-dt0.5', 'transformer'] as const;
type ModelId = (typeof MODELS)[number];
const models = a.models!.split(',') as ModelId[];
for (const m of models) if (!(MODELS as readonly string[]).includes(m)) throw new Error(`unknown model '${m}' (expected one of ${MODELS.join(', ')})`);
const configs = a.configs!.split(',').map((s) => s.split('x').map(Number) as [number, number]);
const dModel = Number(a.dModel);
const lrs = a.lrs!.split(',').map(Number);
const seeds = a.seeds!.split(',').map(Number);
const steps = Number(a.steps);
const batch = Number(a.batch);
const evalEvery = Number(a.evalEvery);
const evalN = Number(a.evalExamples);
const extrapN = Number(a.extrapExamples);
const target = Number(a.target);
const factors = a.extrap!.split(',').map(Number);
const threads = a.threads === undefined ? undefined : Number(a.threads);
if (threads !== undefined) setScanThreads(threads);
const vocabFor = (L: number) => (a.vocab === 'auto' ? zoologyVocab(L) : Number(a.vocab));

interface Row {
  model: ModelId;
  dModel: number;
  seqLen: number;
  numKvPairs: number;
  vocab: number;
  lr: number;
  seed: number;
  params: number;
  stateFloatsPerLayer: number | null;
  batch: number;
  maxSteps: number;
  steps: number;
  examplesSeen: number;
  seconds: number;
  cpuSeconds: number;
  valAcc: number;
  testAcc: number;
  /** factor → accuracy at (f·L, f·N). */
  extrap: Record<string, number>;
  /** factor ('1' = trained length) → accuracy by key–query distance. */
  byGap: Record<string, GapBin[]>;
}

const resultsDir = join(import.meta.dirname, '..', 'results');
const jsonPath = join(resultsDir, `${a.name}.json`);
const readRows = (): Row[] => (existsSync(jsonPath) ? (JSON.parse(readFileSync(jsonPath, 'utf8')).rows as Row[]) : []);
const key = (r: Pick<Row, 'model' | 'dModel' | 'seqLen' | 'numKvPairs' | 'lr' | 'seed'>) => `${r.model}|${r.dModel}|${r.seqLen}|${r.numKvPairs}|${r.lr}|${r.seed}`;

/** A model and its parameter count; Mamba's dt-init ablation and the matched Transformer are built here. */
function createModel(id: ModelId, V: number, seed: number, engine: GemmEngine): { lm: TrainableLM & LogitsModel; state: number | null } {
  const ssm = (variant: Transition, extra: Record<string, unknown> = {}) => {
    const lm = LonghornLM.create({ vocabSize: V, dModel, nLayers: 2, dState: 16, variant, ...extra }, seed, engine);
    return { lm, state: modelStats(lm.config).stateFloatsPerLayer };
  };
  if (id === 'mamba-dt0.5') return ssm('mamba', { dtInit: [0.25, 1] });
  if (id === 'transformer') {
    const target = modelStats(parseConfig({ vocabSize: V, dModel, nLayers: 2, dState: 16, variant: 'longhorn-diag' })).params;
    const base = { vocabSize: V, dModel, nLayers: 2, nHeads: 1 };
    return { lm: TransformerLM.create({ ...base, mlpHidden: matchedMlpHidden(base, target) }, seed, engine), state: null };
  }
  return ssm(id);
}

const paramsOf = (lm: TrainableLM) => (lm instanceof TransformerLM ? transformerParamCount(lm.config) : modelStats((lm as LonghornLM).config).params);

/** Gap-bin edges for a test of length Lt trained at L: [L/4, L/2, L, 2L, 4L, …] below Lt. */
const gapEdges = (L: number, Lt: number) => [L / 4, L / 2, L, 2 * L, 4 * L].filter((e) => e < Lt);

async function runOne(engine: GemmEngine, model: ModelId, L: number, N: number, lr: number, seed: number): Promise<Row> {
  const V = vocabFor(L);
  if (!(V > L)) console.error(`warning: vocab ${V} ≤ L ${L} breaks Zoology's V > L`);
  const task = { vocabSize: V, seqLen: L, numKvPairs: N };
  const { lm, state } = createModel(model, V, seed, engine);
  const val = mqarBatch(task, evalN, new Rng(1_000_000 + seed));
  const dir = join(import.meta.dirname, '..', 'runs', a.name!, `${model}-d${dModel}-L${L}-N${N}-lr${lr}-s${seed}`);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let valAcc = 0;
  console.error(`\n${model} d_model=${dModel} L=${L} N=${N} V=${V} lr=${lr} seed=${seed}`);
  const logs = await train(lm, { lr, weightDecay: 0.1, warmupSteps: Math.round(steps * 0.05), totalSteps: steps, seed, gradClip: 1, checkpointEvery: 250 }, {
    data: mqarStream(task, batch, seed),
    dir,
    progress: true,
    onStep: async (log) => {
      if ((log.step + 1) % evalEvery !== 0) return false;
      valAcc = (await mqarEvaluate(lm, val, [])).acc;
      console.error(`  step ${log.step + 1}: loss ${log.loss.toFixed(4)} val acc ${valAcc.toFixed(4)}`);
      return valAcc >= target;
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  await saveModel(dir, lm);
  const lastStep = (logs.at(-1)?.step ?? steps - 1) + 1;
  valAcc = (await mqarEvaluate(lm, val, [])).acc;
  const extrap: Record<string, number> = {};
  const byGap: Record<string, GapBin[]> = {};
  for (const f of [1, ...factors]) {
    const test = mqarBatch({ ...task, seqLen: f * L, numKvPairs: f * N }, f === 1 ? evalN : extrapN, new Rng(2_000_000 + 1000 * f + seed));
    const r = await mqarEvaluate(lm, test, gapEdges(L, f * L));
    extrap[String(f)] = r.acc;
    byGap[String(f)] = r.byGap;
  }
  const row: Row = {
    model, dModel, seqLen: L, numKvPairs: N, vocab: V, lr, seed, params: paramsOf(lm), stateFloatsPerLayer: state, batch, maxSteps: steps,
    steps: lastStep, examplesSeen: lastStep * batch, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, valAcc, testAcc: extrap['1']!, extrap, byGap,
  };
  console.error(`  → test ${row.testAcc.toFixed(4)} | ${factors.map((f) => `${f}L ${extrap[String(f)]!.toFixed(4)}`).join(' | ')} | ${seconds.toFixed(0)} s`);
  return row;
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const sd = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((s, x) => s + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
const pm = (xs: number[]) => (xs.length < 2 ? `${mean(xs).toFixed(3)} (1 seed)` : `${mean(xs).toFixed(3)} ± ${sd(xs).toFixed(3)}`);

interface Cell {
  model: ModelId;
  dModel: number;
  seqLen: number;
  numKvPairs: number;
  vocab: number;
  params: number;
  lrsRun: number[];
  lr: number;
  seeds: number[];
  valMean: number;
  test: number[];
  success: number;
  extrap: Record<string, number[]>;
  steps: number[];
  seconds: number[];
  /** hi is Infinity for the last bin (null once written to JSON). */
  byGap: Record<string, { lo: number; hi: number | null; acc: number; total: number }[]>;
}

/** Groups rows into cells and picks each cell's lr by mean validation accuracy (ties: the smaller lr). */
function cells(rows: Row[]): Cell[] {
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const k = `${r.model}|${r.dModel}|${r.seqLen}|${r.numKvPairs}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const out: Cell[] = [];
  for (const rs of groups.values()) {
    const lrsRun = [...new Set(rs.map((r) => r.lr))].sort((x, y) => x - y);
    const byLr = lrsRun.map((lr) => ({ lr, rs: rs.filter((r) => r.lr === lr) }));
    const best = byLr.reduce((p, c) => (mean(c.rs.map((r) => r.valAcc)) > mean(p.rs.map((r) => r.valAcc)) ? c : p));
    const b = best.rs.sort((x, y) => x.seed - y.seed);
    const fs = Object.keys(b[0]!.extrap).filter((f) => f !== '1');
    const gapKeys = Object.keys(b[0]!.byGap);
    out.push({
      model: b[0]!.model, dModel: b[0]!.dModel, seqLen: b[0]!.seqLen, numKvPairs: b[0]!.numKvPairs, vocab: b[0]!.vocab, params: b[0]!.params,
      lrsRun, lr: best.lr, seeds: b.map((r) => r.seed), valMean: mean(b.map((r) => r.valAcc)), test: b.map((r) => r.testAcc),
      success: b.filter((r) => r.testAcc >= 0.99).length,
      extrap: Object.fromEntries(fs.map((f) => [f, b.map((r) => r.extrap[f]!)])),
      steps: b.map((r) => r.steps), seconds: b.map((r) => r.seconds),
      byGap: Object.fromEntries(gapKeys.map((f) => [f, b[0]!.byGap[f]!.map((bin, i) => {
        const hits = b.reduce((s, r) => s + r.byGap[f]![i]!.hits, 0);
        const total = b.reduce((s, r) => s + r.byGap[f]![i]!.total, 0);
        return { lo: bin.lo, hi: bin.hi, acc: total ? hits / total : NaN, total };
      })])),
    });
  }
  const order = (m: string) => (MODELS as readonly string[]).indexOf(m);
  return out.sort((p, q) => p.seqLen - q.seqLen || p.dModel - q.dModel || order(p.model) - order(q.model));
}

function plot(cs: Cell[]): string {
  const W = 80 + cs.length * 46;
  const y = (v: number) => 220 - 200 * v;
  const parts: string[] = [];
  cs.forEach((c, i) => {
    const x = 60 + i * 46;
    const m = mean(c.test);
    const s = sd(c.test);
    parts.push(`<rect x="${x}" y="${y(m)}" width="18" height="${200 * m}" fill="#1f77b4"/>`);
    parts.push(`<line x1="${x + 9}" x2="${x + 9}" y1="${y(Math.min(1, m + s))}" y2="${y(Math.max(0, m - s))}" stroke="#000"/>`);
    const e = c.extrap['8'] ?? c.extrap[Object.keys(c.extrap).at(-1) ?? ''];
    if (e) parts.push(`<rect x="${x + 19}" y="${y(mean(e))}" width="18" height="${200 * mean(e)}" fill="#ff7f0e"/>`);
    for (const [j, v] of c.test.entries()) parts.push(`<circle cx="${x + 5 + 4 * j}" cy="${y(v)}" r="2" fill="#000"/>`);
    parts.push(`<text x="${x}" y="232" font-size="8" transform="rotate(30 ${x} 232)">${c.model} L${c.seqLen}</text>`);
  });
  for (const t of [0, 0.5, 1]) parts.push(`<text x="20" y="${y(t) + 4}" font-size="10">${t}</text><line x1="50" x2="${W}" y1="${y(t)}" y2="${y(t)}" stroke="#ccc"/>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W + 20}" height="290" font-family="sans-serif">` +
    `<text x="50" y="285" font-size="10">MQAR test accuracy, mean ± sd over seeds (dots: seeds); orange: at 8L with 8N</text>${parts.join('')}</svg>\n`;
}

async function writeResults(rows: Row[]): Promise<void> {
  const onDisk = readRows();
  const merged = new Map(onDisk.map((r) => [key(r), r]));
  for (const r of rows) merged.set(key(r), r);
  const all = [...merged.values()];
  const cs = cells(all);
  const budget = `2 layers, d_state 16 (SSMs), AdamW (wd 0.1, β 0.9/0.98), 5% warm-up + cosine to 0.1·lr, grad clip 1, fresh seeded examples every step, ` +
    `early stop at validation acc ≥ ${target} (checked every ${evalEvery} steps on ${evalN} examples), ${evalN} test examples at L, ${extrapN} at each f·L; ` +
    `Zoology (Arora et al. 2023): V = 8192, 100k training examples × 64 epochs = 6.4M example passes`;
  await writeFileAtomic(jsonPath, JSON.stringify({ budget, cells: cs, rows: all }, null, 2) + '\n');
  const fs = [...new Set(cs.flatMap((c) => Object.keys(c.extrap)))].sort((x, y) => Number(x) - Number(y));
  const lines = [
    `# MQAR, Zoology protocol (${a.name})`,
    '',
    `Budget: ${budget}. Per run: batch × step budget as listed (examples = steps actually run × batch). Machine: shared 2-core CPU, one thread per run.`,
    '',
    `Cell = model × (L, N): the lr with the best mean validation accuracy over the seeds (lrs run listed), then test accuracy mean ± sd over those seeds, min–max, success = seeds with test acc ≥ 0.99; extrapolation: test at f·L with f·N key–value pairs (same V).`,
    '',
    `| model | d_model | L | N | V | params | lrs run | lr | seeds | test acc | min–max | success | ${fs.map((f) => `@${f}L (${f}N)`).join(' | ')} | batch × steps (mean run) | examples (mean) | wall s (mean) | train tok/s (wall, incl. evals) |`,
    `|---|---|---|---|---|---|---|---|---|---|---|---|${fs.map(() => '---|').join('')}---|---|---|---|`,
    ...cs.map((c) => {
      const rs = all.filter((r) => r.model === c.model && r.dModel === c.dModel && r.seqLen === c.seqLen && r.numKvPairs === c.numKvPairs && r.lr === c.lr);
      return `| ${c.model} | ${c.dModel} | ${c.seqLen} | ${c.numKvPairs} | ${c.vocab} | ${c.params} | ${c.lrsRun.join(', ')} | ${c.lr} | ${c.seeds.length} (${c.seeds.join(',')}) | ${pm(c.test)} | ${Math.min(...c.test).toFixed(3)}–${Math.max(...c.test).toFixed(3)} | ${c.success}/${c.seeds.length} | ${fs.map((f) => pm(c.extrap[f] ?? [NaN])).join(' | ')} | ${rs[0]!.batch} × ${mean(c.steps).toFixed(0)} (budget ${rs[0]!.maxSteps}) | ${(mean(c.steps) * rs[0]!.batch).toFixed(0)} | ${mean(c.seconds).toFixed(0)} | ${mean(rs.map((r) => (r.steps * r.batch * r.seqLen) / r.seconds)).toFixed(0)} |`;
    }),
    '',
    '## Accuracy by key–query distance (best-lr cell, all its seeds pooled; distance in tokens, L = trained length)',
    '',
    ...cs.flatMap((c) => [
      `**${c.model}, L ${c.seqLen}, N ${c.numKvPairs}, lr ${c.lr}:** ` +
        Object.entries(c.byGap).map(([f, bins]) => `@${f}L: ${bins.map((b) => `[${b.lo}, ${b.hi === Infinity || b.hi === null ? '∞' : b.hi}) ${Number.isNaN(b.acc) ? '–' : b.acc.toFixed(2)} (n ${b.total})`).join(', ')}`).join('; '),
      '',
    ]),
    '## Runs',
    '',
    '| model | L | N | lr | seed | steps | val acc | test acc | ' + fs.map((f) => `@${f}L`).join(' | ') + ' | wall s |',
    '|---|---|---|---|---|---|---|---|' + fs.map(() => '---|').join('') + '---|',
    ...all
      .sort((p, q) => p.seqLen - q.seqLen || (MODELS as readonly string[]).indexOf(p.model) - (MODELS as readonly string[]).indexOf(q.model) || p.lr - q.lr || p.seed - q.seed)
      .map((r) => `| ${r.model} | ${r.seqLen} | ${r.numKvPairs} | ${r.lr} | ${r.seed} | ${r.steps} | ${r.valAcc.toFixed(4)} | ${r.testAcc.toFixed(4)} | ${fs.map((f) => r.extrap[f]?.toFixed(4) ?? '-').join(' | ')} | ${r.seconds.toFixed(0)} |`),
    '',
  ];
  await writeFileAtomic(join(resultsDir, `${a.name}.md`), lines.join('\n'));
  await writeFileAtomic(join(resultsDir, `${a.name}.svg`), plot(cs));
}

if (a.summary) {
  await writeResults([]);
} else {
  const engine = threads === undefined ? await defaultEngine() : createOrtEngine({ threads });
  const done: Row[] = [];
  for (const [L, N] of configs) {
    for (const model of models) {
      for (const lr of lrs) {
        for (const seed of seeds) {
          if (readRows().some((r) => key(r) === key({ model, dModel, seqLen: L, numKvPairs: N, lr, seed }))) continue;
          done.push(await runOne(engine, model, L, N, lr, seed));
          await writeResults(done);
        }
      }
    }
  }
  await writeResults(done);
}
