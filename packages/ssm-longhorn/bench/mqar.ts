/**
 * MQAR grid (spec: docs/specs/longhorn.md "Benchmarks"), scaled to a shared CPU: for each transition × (L, N) × lr, train a
 * 2-layer, no-MLP model on a fresh seeded stream of examples, stop early once validation accuracy reaches the
 * target, then report test accuracy at the trained length and at 2L (length extrapolation).
 *
 *   npx tsx packages/ssm-longhorn/bench/mqar.ts [--variants longhorn-diag,mamba] [--configs 64x4,128x8]
 *     [--dModel 64] [--lrs 2.2e-3,1e-2] [--steps 1500] [--batch 32] [--vocab 256] [--evalEvery 50] [--name mqar]
 *     [--threads 1]
 *
 * Writes results/<name>.json and results/<name>.md (atomically) after every run, so a long grid can be read while
 * it runs; a rerun skips runs already in the JSON (resume).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Rng, createOrtEngine, defaultEngine, writeFileAtomic } from '@saelab/core';
import { LonghornLM, TRANSITIONS, type Transition, loadModel, modelStats, mqarAccuracy, mqarBatch, mqarStream, saveModel, setScanThreads, train } from '../src/index.js';

const { values: a } = parseArgs({
  options: {
    variants: { type: 'string', default: 'longhorn-diag' },
    configs: { type: 'string', default: '64x4,128x8' },
    dModel: { type: 'string', default: '64' },
    lrs: { type: 'string', default: '1e-2' },
    steps: { type: 'string', default: '1500' },
    batch: { type: 'string', default: '32' },
    vocab: { type: 'string', default: '256' },
    evalEvery: { type: 'string', default: '50' },
    evalExamples: { type: 'string', default: '256' },
    target: { type: 'string', default: '0.99' },
    seed: { type: 'string', default: '0' },
    name: { type: 'string', default: 'mqar' },
    /** Warm start from a model folder (curriculum); stated in the results. */
    init: { type: 'string' },
    /** Threads for the GEMMs and the scan (default: all cores); 1 when several runs share the machine. */
    threads: { type: 'string' },
  },
});

const variants = a.variants!.split(',') as Transition[];
for (const v of variants) if (!(TRANSITIONS as readonly string[]).includes(v)) throw new Error(`unknown variant ${v}`);
const configs = a.configs!.split(',').map((s) => s.split('x').map(Number) as [number, number]);
const dModels = a.dModel!.split(',').map(Number);
const lrs = a.lrs!.split(',').map(Number);
const steps = Number(a.steps);
const batch = Number(a.batch);
const V = Number(a.vocab);
const evalEvery = Number(a.evalEvery);
const evalN = Number(a.evalExamples);
const target = Number(a.target);
const seed = Number(a.seed);
const threads = a.threads === undefined ? undefined : Number(a.threads);
if (threads !== undefined) setScanThreads(threads);
const engine = threads === undefined ? await defaultEngine() : createOrtEngine({ threads });

interface Row {
  variant: Transition;
  dModel: number;
  seqLen: number;
  numKvPairs: number;
  vocab: number;
  lr: number;
  params: number;
  stateFloatsPerLayer: number;
  steps: number;
  examplesSeen: number;
  seconds: number;
  cpuSeconds: number;
  init: string | null;
  valAcc: number;
  testAcc: number;
  testAcc2L: number;
  /** Examples per step and the step budget (early stop may end sooner). */
  batch?: number;
  maxSteps?: number;
  threads?: number;
  /** Model, data and evaluation seed (absent in early rows: 0). */
  seed?: number;
}

const sameRun = (p: Row, q: Row) =>
  p.variant === q.variant && p.dModel === q.dModel && p.seqLen === q.seqLen && p.numKvPairs === q.numKvPairs && p.lr === q.lr && (p.seed ?? 0) === (q.seed ?? 0);

const resultsDir = join(import.meta.dirname, '..', 'results');
const jsonPath = join(resultsDir, `${a.name}.json`);
const rows: Row[] = existsSync(jsonPath) ? (JSON.parse(readFileSync(jsonPath, 'utf8')).rows as Row[]) : [];

async function writeResults(): Promise<void> {
  // Several processes may run parts of one grid (e.g. one per core): merge with what the file holds now.
  const onDisk: Row[] = existsSync(jsonPath) ? (JSON.parse(readFileSync(jsonPath, 'utf8')).rows as Row[]) : [];
  for (const r of onDisk) if (!rows.some((m) => sameRun(m, r))) rows.push(r);
  rows.sort((p, q) => p.seqLen - q.seqLen || p.dModel - q.dModel || p.variant.localeCompare(q.variant) || p.lr - q.lr || (p.seed ?? 0) - (q.seed ?? 0));
  const budget = `vocab ${V} (Zoology: 8192), fresh examples every step (early stop at val acc ≥ ${target}), ` +
    `${evalN} val / ${evalN} test examples, 2 layers, d_state 16, AdamW (wd 0.1), 5% warm-up + cosine, machine: shared 2-core CPU`;
  await writeFileAtomic(jsonPath, JSON.stringify({ budget, rows }, null, 2) + '\n');
  const lines = [
    `# MQAR (${a.name})`,
    '',
    `Budget: ${budget}; per run: batch × step budget as listed, wall and CPU seconds measured.`,
    '',
    '| variant | d_model | L | N | lr | seed | params | state floats/layer | batch | step budget | steps | examples | wall s | CPU s | warm start | test acc | test acc @2L |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) =>
      `| ${r.variant} | ${r.dModel} | ${r.seqLen} | ${r.numKvPairs} | ${r.lr} | ${r.seed ?? 0} | ${r.params} | ${r.stateFloatsPerLayer} | ${r.batch ?? '-'} | ${r.maxSteps ?? '-'} | ${r.steps} | ${r.examplesSeen} | ${r.seconds.toFixed(0)} | ${r.cpuSeconds?.toFixed(0) ?? '-'} | ${r.init ?? '-'} | ${r.testAcc.toFixed(4)} | ${r.testAcc2L.toFixed(4)} |`),
    '',
  ];
  await writeFileAtomic(join(resultsDir, `${a.name}.md`), lines.join('\n'));
  await writeFileAtomic(join(resultsDir, `${a.name}.svg`), plot(rows));
}

/** Grouped bar chart: best test accuracy (over lr) per (L, N) and variant; hatched = at 2L. */
function plot(rs: Row[]): string {
  const groups = [...new Set(rs.map((r) => `${r.seqLen}x${r.numKvPairs} d${r.dModel}`))];
  const vs = [...new Set(rs.map((r) => r.variant))];
  const colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728'];
  const W = Math.max(460, 230 + groups.length * (vs.length * 2 * 14 + 30));
  const H = 260;
  const y = (acc: number) => 220 - 200 * acc;
  const parts: string[] = [];
  groups.forEach((g, gi) => {
    const x0 = 60 + gi * (vs.length * 2 * 14 + 30);
    vs.forEach((v, vi) => {
      const cand = rs.filter((r) => `${r.seqLen}x${r.numKvPairs} d${r.dModel}` === g && r.variant === v);
      if (!cand.length) return;
      const best = cand.reduce((p, c) => (c.testAcc > p.testAcc ? c : p));
      const x = x0 + vi * 28;
      parts.push(`<rect x="${x}" y="${y(best.testAcc)}" width="13" height="${200 * best.testAcc}" fill="${colors[vi % 4]}"/>`);
      parts.push(`<rect x="${x + 14}" y="${y(best.testAcc2L)}" width="13" height="${200 * best.testAcc2L}" fill="${colors[vi % 4]}" opacity="0.45"/>`);
    });
    parts.push(`<text x="${x0}" y="238" font-size="10">L×N ${g}</text>`);
  });
  vs.forEach((v, vi) => parts.push(`<rect x="${W - 150}" y="${10 + vi * 14}" width="10" height="10" fill="${colors[vi % 4]}"/><text x="${W - 136}" y="${19 + vi * 14}" font-size="10">${v}</text>`));
  for (const t of [0, 0.5, 1]) parts.push(`<text x="20" y="${y(t) + 4}" font-size="10">${t}</text><line x1="50" x2="${W - 160}" y1="${y(t)}" y2="${y(t)}" stroke="#ccc"/>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">` +
    `<text x="50" y="254" font-size="10">MQAR test accuracy (solid: trained length; faded: 2L), best lr per cell</text>${parts.join('')}</svg>\n`;
}

for (const variant of variants) {
  for (const dModel of dModels) {
    for (const [L, N] of configs) {
      for (const lr of lrs) {
        const onDisk: Row[] = existsSync(jsonPath) ? (JSON.parse(readFileSync(jsonPath, 'utf8')).rows as Row[]) : [];
        if ([...rows, ...onDisk].some((r) => r.variant === variant && r.dModel === dModel && r.seqLen === L && r.numKvPairs === N && r.lr === lr && (r.seed ?? 0) === seed)) continue;
        const task = { vocabSize: V, seqLen: L, numKvPairs: N };
        const modelCfg = { vocabSize: V, dModel, nLayers: 2, dState: 16, variant };
        const lm = a.init ? await loadModel(a.init, engine) : LonghornLM.create(modelCfg, seed, engine);
        if (JSON.stringify({ ...lm.config, variant }) !== JSON.stringify(lm.config) || lm.config.dModel !== dModel || lm.config.vocabSize !== V) {
          throw new Error(`--init ${a.init}: model config ${JSON.stringify(lm.config)} does not match this run`);
        }
        const val = mqarBatch(task, evalN, new Rng(1_000_000 + seed));
        const test = mqarBatch(task, evalN, new Rng(2_000_000 + seed));
        const test2L = mqarBatch({ ...task, seqLen: 2 * L }, evalN, new Rng(3_000_000 + seed));
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        let valAcc = 0;
        console.error(`\n${variant} d_model=${dModel} L=${L} N=${N} lr=${lr}`);
        const logs = await train(lm, { lr, weightDecay: 0.1, warmupSteps: Math.round(steps * 0.05), totalSteps: steps, seed, gradClip: 1 }, {
          data: mqarStream(task, batch, seed),
          progress: true,
          onStep: async (log) => {
            if ((log.step + 1) % evalEvery !== 0) return false;
            valAcc = await mqarAccuracy(lm, val);
            console.error(`  step ${log.step + 1}: loss ${log.loss.toFixed(4)} val acc ${valAcc.toFixed(4)}`);
            return valAcc >= target;
          },
        });
        const seconds = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(c0);
        await saveModel(join(import.meta.dirname, '..', 'runs', `${a.name}-${variant}-d${dModel}-L${L}-N${N}-lr${lr}${seed ? `-s${seed}` : ''}`), lm);
        const stats = modelStats(lm.config);
        const row: Row = {
          variant, dModel, seqLen: L, numKvPairs: N, vocab: V, lr, params: stats.params, stateFloatsPerLayer: stats.stateFloatsPerLayer,
          steps: logs.length, examplesSeen: logs.length * batch, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, init: a.init ?? null, valAcc,
          testAcc: await mqarAccuracy(lm, test), testAcc2L: await mqarAccuracy(lm, test2L), batch, maxSteps: steps, threads, seed,
        };
        console.error(`  → test acc ${row.testAcc.toFixed(4)}, @2L ${row.testAcc2L.toFixed(4)}, ${seconds.toFixed(0)} s`);
        rows.push(row);
        await writeResults();
      }
    }
  }
}
await writeResults();
