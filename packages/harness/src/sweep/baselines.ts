/**
 * The reference lines of every frontier plot, computed once per dataset and cached:
 *  - PCA at rank r (fit on the TRAINING rows, evaluated on the held-out rows): r dense coefficients per token,
 *    the same count of active coefficients as an SAE at L0 = r. An SAE that does not beat PCA at its L0 has
 *    not found anything a linear, dense code would not;
 *  - mean-ablation (the site replaced by the mean of the training activations: PCA at rank 0) and
 *    zero-ablation (the site replaced by zeros), where an LM is present — the "lost everything" ends of the
 *    ΔLM-loss axis, in our convention and in SAEBench's (see splice-field.ts).
 * Evaluation windows, rows and conventions are those of the points, so the lines are directly comparable.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type LmEdit, runMeans, windowedLmStats } from '@saelab/activations';
import { MetricsAccumulator, type PcaModel, SaeBenchExplainedVariance, type Tensor, fitPca, klDivScore, pcaReconstruct, writeFileAtomic, zeros } from '@saelab/core';
import { rowRange } from '../data.js';
import { hashOf } from '../hash.js';
import { sourceHash } from './code-version.js';
import type { SweepData } from './dataset.js';
import { evalBlocks, forEachEvalGroup } from './eval-blocks.js';

const BASELINES_VERSION = 1;

/** LM-side numbers of one reconstruction (ours and SAEBench's conventions). */
export interface BaselineLm {
  /** Ours: CE with the site replaced at non-BOS positions − CE clean, over all predictions. */
  deltaLoss: number;
  /** Ours: (CE_zero − CE) / (CE_zero − CE_clean). */
  ceRecovered: number | null;
  /** SAEBench: KL(clean ‖ this) over non-BOS positions. */
  klDiv: number;
  klDivScore: number | null;
  /** SAEBench: (CE_zero_all − CE) / (CE_zero_all − CE_clean), BOS predictions excluded. */
  ceLossScore: number | null;
}

export interface BaselineLine {
  name: string;
  /** PCA rank (= active coefficients per token); null for the ablations. */
  rank: number | null;
  fvu: number | null;
  mse: number;
  saebenchExplainedVariance: number | null;
  lm: BaselineLm | null;
}

export interface SweepBaselines {
  version: number;
  dataFingerprint: string;
  /** Training rows the PCA (and the training mean) was estimated on. */
  pcaRows: number;
  pca: BaselineLine[];
  meanAblation: BaselineLine;
  zeroAblation: BaselineLine;
  /** Shared LM numbers: clean CE and CE_zero in both conventions, KL of the every-position zero-ablation. */
  lm: {
    ceClean: number;
    /** Ours: non-BOS positions zeroed, every prediction averaged. */
    ceZero: number;
    /** SAEBench/SAELens: every position zeroed (BOS included), predictions made at BOS excluded. */
    ceZeroSaebench: number;
    ceCleanSaebench: number;
    /** SAEBench's kl_div_with_ablation. */
    klZeroSaebench: number;
    /** Whether the LM has a BOS token (without one, both conventions coincide). */
    hasBos: boolean;
  } | null;
}

/** PCA ranks drawn: 1..8, then about ×1.25 per step, up to d. */
export function pcaRanks(d: number): number[] {
  const out = new Set<number>();
  for (let r = 1; r <= Math.min(8, d); r++) out.add(r);
  for (let r = 8; r < d; r = Math.ceil(r * 1.25)) out.add(r);
  out.add(d);
  return [...out].sort((a, b) => a - b);
}

const memo = new WeakMap<SweepData, Promise<SweepBaselines>>();

/** The dataset's baselines: from the cache, or computed (a few seconds: one LM forward per line). */
export function sweepBaselines(data: SweepData, cacheDir: string, batchWindows: number, log: (s: string) => void): Promise<SweepBaselines> {
  let p = memo.get(data);
  if (!p) {
    p = loadOrCompute(data, cacheDir, batchWindows, log);
    memo.set(data, p);
  }
  return p;
}

async function loadOrCompute(data: SweepData, cacheDir: string, batchWindows: number, log: (s: string) => void): Promise<SweepBaselines> {
  const code = sourceHash(['core/src', 'activations/src/splice-field.ts', 'harness/src/sweep/baselines.ts', 'harness/src/sweep/eval-blocks.ts']);
  const file = join(cacheDir, 'baselines', `${hashOf({ v: BASELINES_VERSION, data: data.fingerprint, batchWindows, code })}.json`);
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as SweepBaselines;
  log(`baselines: PCA on the training rows, mean- and zero-ablation on the held-out rows${data.lm ? ' and windows' : ''}`);
  const b = await computeBaselines(data, batchWindows);
  await mkdir(join(cacheDir, 'baselines'), { recursive: true });
  await writeFileAtomic(file, JSON.stringify(b) + '\n');
  return b;
}

type Recon = (x: Tensor) => Tensor;

/** FVU, MSE and SAEBench explained variance of a reconstruction on the held-out rows. */
async function rowMetrics(data: SweepData, batchWindows: number, f: Recon): Promise<{ fvu: number | null; mse: number; ev: number | null }> {
  const acc = new MetricsAccumulator(data.d, 1);
  const ev = new SaeBenchExplainedVariance();
  const blocks = evalBlocks(data);
  await forEachEvalGroup(data, blocks, batchWindows, (x) => {
    const y = f(x);
    acc.add(x, y, zeros([x.shape[0]!, 1]));
    ev.addBatch(x, y);
  });
  const s = acc.summary();
  return { fvu: s.fvu, mse: s.mse, ev: ev.value() };
}

export async function computeBaselines(data: SweepData, batchWindows: number): Promise<SweepBaselines> {
  const pca: PcaModel = await fitPca(rowRange(data.combined, 0, data.trainRows));
  const ranks = pcaRanks(data.d);
  const lines: { name: string; rank: number | null; f: Recon; rows: 'non-bos' | 'all' }[] = [
    ...ranks.map((r) => ({ name: `pca_${r}`, rank: r, f: (x: Tensor) => pcaReconstruct(pca, x, r), rows: 'non-bos' as const })),
    { name: 'mean', rank: null, f: (x: Tensor) => pcaReconstruct(pca, x, 0), rows: 'non-bos' },
    { name: 'zero', rank: null, f: (x: Tensor) => zeros(x.shape), rows: 'non-bos' },
  ];
  let lmPart: SweepBaselines['lm'] = null;
  const lmOf = new Map<string, BaselineLm>();
  if (data.lm && data.evalWindows) {
    const ev = data.evalWindows;
    const edits: LmEdit[] = [...lines.map((l) => ({ name: l.name, rows: l.rows, fn: l.f })), { name: 'zeroAll', rows: 'all', fn: (x: Tensor) => zeros(x.shape) }];
    const st = await windowedLmStats(data.lm.lm, { tokens: ev.tokens, batch: ev.windows, seqLen: ev.seqLen }, data.site, edits, { batchWindows });
    const clean = runMeans(st, st.clean);
    const zero = runMeans(st, st.runs.zero!);
    const zeroAll = runMeans(st, st.runs.zeroAll!);
    lmPart = { ceClean: clean.ceAll, ceZero: zero.ceAll, ceZeroSaebench: zeroAll.ceNonBos, ceCleanSaebench: clean.ceNonBos, klZeroSaebench: zeroAll.klNonBos, hasBos: data.lm.lm.info.bos !== null };
    for (const l of lines) {
      const m = runMeans(st, st.runs[l.name]!);
      lmOf.set(l.name, {
        deltaLoss: m.ceAll - clean.ceAll,
        ceRecovered: zero.ceAll === clean.ceAll ? null : (zero.ceAll - m.ceAll) / (zero.ceAll - clean.ceAll),
        klDiv: m.klNonBos,
        klDivScore: klDivScore(m.klNonBos, zeroAll.klNonBos),
        ceLossScore: zeroAll.ceNonBos === clean.ceNonBos ? null : (zeroAll.ceNonBos - m.ceNonBos) / (zeroAll.ceNonBos - clean.ceNonBos),
      });
    }
  }
  const out: BaselineLine[] = [];
  for (const l of lines) {
    const r = await rowMetrics(data, batchWindows, l.f);
    out.push({ name: l.name, rank: l.rank, fvu: r.fvu, mse: r.mse, saebenchExplainedVariance: r.ev, lm: lmOf.get(l.name) ?? null });
  }
  return {
    version: BASELINES_VERSION,
    dataFingerprint: data.fingerprint,
    pcaRows: pca.rows,
    pca: out.filter((l) => l.rank !== null),
    meanAblation: out.find((l) => l.name === 'mean')!,
    zeroAblation: out.find((l) => l.name === 'zero')!,
    lm: lmPart,
  };
}
