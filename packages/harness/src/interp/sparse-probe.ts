/**
 * k-sparse probing (SAEBench's sparse_probing, Gurnee et al. 2023 "Finding neurons in a haystack"), offline.
 *
 * For one multi-class labelling of examples (token- or document-level, see probe-data.ts), each class c gives a
 * binary task "c vs the rest", balanced as SAEBench's `prepare_probe_data` does: all P positives of the split,
 * negatives drawn equally from every other class (⌈P / #other⌉ each, topped up from the rest when a class runs
 * out), truncated to P. Then, on the TRAIN split only:
 *   - features ranked by |mean over positives − mean over negatives| (SAEBench `get_top_k_mean_diff_mask`);
 *   - for each k: an L2 logistic regression (C = 1, logistic.ts) on the top-k features; accuracy on the TEST split;
 *   - the best single feature: for each of the top 20 features by mean difference, the threshold (on the side of its
 *     mean difference) that maximises train F1; the feature with the best train F1 is reported with its test F1.
 * `all: true` also fits the probe on every feature (the raw-activation baseline uses it; for an SAE this would be
 * a dense probe on thousands of latents, which SAEBench does on a GPU and we skip).
 */
import { Rng } from '@saelab/core';
import { fitLogistic, predictLogistic } from './logistic.js';

/** Examples × features, row-major. */
export interface FeatureMatrix {
  rows: number;
  cols: number;
  data: Float32Array;
}

export interface LabelledExamples {
  /** Class index per example (into `classes`), -1 = not used. */
  label: Int32Array;
  /** 0 = train, 1 = test, per example. */
  split: Uint8Array;
  classes: readonly string[];
}

export interface BinaryProbeResult {
  class: string;
  trainExamples: number;
  testExamples: number;
  /** Held-out accuracy of the k-feature probe, by k. */
  accuracy: Record<string, number>;
  /** Held-out accuracy of the probe on all features (when asked for). */
  accuracyAll?: number;
  /** The single best feature (by train F1) and its held-out F1. */
  bestFeature: { index: number; f1: number; trainF1: number };
}

export interface ProbeOptions {
  ks?: readonly number[];
  /** Also fit a probe on all features. */
  all?: boolean;
  /** Classes with fewer positives than this in either split are skipped. */
  minPositives?: number;
  /** Positives per class and split are capped at this (a random subset). */
  maxPositives?: number;
  seed?: number;
  C?: number;
}

export const DEFAULT_PROBE_KS = [1, 2, 5, 20] as const;
/** Features (by mean difference) searched for the best single feature. */
export const BEST_FEATURE_CANDIDATES = 20;

/** Indices of a balanced one-vs-rest sample from `split` (SAEBench's recipe, see module comment). */
export function balancedSample(ex: LabelledExamples, cls: number, split: 0 | 1, rng: Rng, maxPositives: number): { index: number[]; y: number[] } {
  const byClass = ex.classes.map(() => [] as number[]);
  for (let i = 0; i < ex.label.length; i++) if (ex.split[i] === split && ex.label[i]! >= 0) byClass[ex.label[i]!]!.push(i);
  const pos = rng.shuffle([...byClass[cls]!]).slice(0, maxPositives);
  const others = byClass.map((_, c) => c).filter((c) => c !== cls && byClass[c]!.length > 0);
  const per = Math.ceil(pos.length / Math.max(1, others.length));
  const neg: number[] = [];
  const rest: number[] = [];
  for (const c of others) {
    const s = rng.shuffle([...byClass[c]!]);
    neg.push(...s.slice(0, per));
    rest.push(...s.slice(per));
  }
  if (neg.length < pos.length) neg.push(...rng.shuffle(rest).slice(0, pos.length - neg.length));
  const negs = rng.shuffle(neg).slice(0, pos.length);
  const n = Math.min(pos.length, negs.length);
  return { index: [...pos.slice(0, n), ...negs.slice(0, n)], y: [...new Array<number>(n).fill(1), ...new Array<number>(n).fill(0)] };
}

/** Features sorted by |mean(pos) − mean(neg)| on the given rows, descending (ties by index), with the signed difference. */
export function rankByMeanDifference(f: FeatureMatrix, index: readonly number[], y: readonly number[]): { order: Int32Array; diff: Float64Array } {
  const m = f.cols;
  const sp = new Float64Array(m);
  const sn = new Float64Array(m);
  let np = 0;
  let nn = 0;
  index.forEach((r, i) => {
    const off = r * m;
    const acc = y[i] ? sp : sn;
    if (y[i]) np++;
    else nn++;
    for (let j = 0; j < m; j++) acc[j]! += f.data[off + j]!;
  });
  const diff = new Float64Array(m);
  for (let j = 0; j < m; j++) diff[j] = sp[j]! / Math.max(1, np) - sn[j]! / Math.max(1, nn);
  const order = Int32Array.from({ length: m }, (_, j) => j).sort((a, b) => Math.abs(diff[b]!) - Math.abs(diff[a]!) || a - b);
  return { order, diff };
}

function gather(f: FeatureMatrix, rows: readonly number[], cols: ArrayLike<number>): Float64Array {
  const k = cols.length;
  const out = new Float64Array(rows.length * k);
  rows.forEach((r, i) => {
    for (let j = 0; j < k; j++) out[i * k + j] = f.data[r * f.cols + cols[j]!]!;
  });
  return out;
}

function accuracy(pred: Uint8Array, y: readonly number[]): number {
  let ok = 0;
  for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) ok++;
  return ok / Math.max(1, y.length);
}

/** F1 of predictions `v > t` (sign +1) or `v < t` (sign −1) against labels y. */
function f1At(values: Float64Array, y: readonly number[], t: number, sign: number): number {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < y.length; i++) {
    const p = sign * values[i]! > sign * t;
    if (p && y[i]) tp++;
    else if (p) fp++;
    else if (y[i]) fn++;
  }
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

/** The threshold maximising train F1 for one feature (candidates: midpoints between sorted distinct values). */
function bestThreshold(values: Float64Array, y: readonly number[], sign: number): { t: number; f1: number } {
  const idx = Array.from(values.keys()).sort((a, b) => sign * (values[b]! - values[a]!)); // most positive-looking first
  const P = y.reduce((s, v) => s + v, 0);
  let tp = 0;
  let fp = 0;
  let best = { t: sign > 0 ? Infinity : -Infinity, f1: 0 };
  for (let r = 0; r < idx.length; r++) {
    if (y[idx[r]!]) tp++;
    else fp++;
    const v = values[idx[r]!]!;
    const next = r + 1 < idx.length ? values[idx[r + 1]!]! : v - sign; // predict positive for the first r+1
    if (next === v) continue;
    const f1 = (2 * tp) / (2 * tp + fp + (P - tp));
    if (f1 > best.f1) best = { t: (v + next) / 2, f1 };
  }
  return best;
}

/** One binary probe (class `cls` vs the rest). Null when the class has too few positives. */
export function probeClass(f: FeatureMatrix, ex: LabelledExamples, cls: number, o: ProbeOptions = {}): BinaryProbeResult | null {
  const rng = new Rng((o.seed ?? 0) * 7919 + cls + 1);
  const maxPos = o.maxPositives ?? 1000;
  const train = balancedSample(ex, cls, 0, rng, maxPos);
  const test = balancedSample(ex, cls, 1, rng, maxPos);
  const minPos = o.minPositives ?? 10;
  if (train.index.length / 2 < minPos || test.index.length / 2 < Math.max(1, Math.floor(minPos / 4))) return null;
  const { order, diff } = rankByMeanDifference(f, train.index, train.y);
  const acc: Record<string, number> = {};
  const fitAndScore = (cols: ArrayLike<number>) => {
    const model = fitLogistic(gather(f, train.index, cols), train.y, train.index.length, cols.length, { C: o.C ?? 1 });
    return accuracy(predictLogistic(model, gather(f, test.index, cols), test.index.length), test.y);
  };
  for (const k of o.ks ?? DEFAULT_PROBE_KS) acc[String(k)] = fitAndScore(order.subarray(0, Math.min(k, f.cols)));
  const result: BinaryProbeResult = {
    class: ex.classes[cls]!,
    trainExamples: train.index.length,
    testExamples: test.index.length,
    accuracy: acc,
    bestFeature: { index: -1, f1: 0, trainF1: -1 },
  };
  if (o.all) result.accuracyAll = fitAndScore(Int32Array.from({ length: f.cols }, (_, j) => j));
  for (const j of order.subarray(0, Math.min(BEST_FEATURE_CANDIDATES, f.cols))) {
    const sign = diff[j]! >= 0 ? 1 : -1;
    const trainValues = gather(f, train.index, [j]);
    const { t, f1 } = bestThreshold(trainValues, train.y, sign);
    if (f1 > result.bestFeature.trainF1) result.bestFeature = { index: j, trainF1: f1, f1: f1At(gather(f, test.index, [j]), test.y, t, sign) };
  }
  return result;
}

export interface TaskProbeResult {
  /** Per class (classes with too few examples are left out). */
  classes: BinaryProbeResult[];
  /** Means over the classes. */
  meanAccuracy: Record<string, number>;
  meanAccuracyAll?: number;
  meanBestF1: number;
}

/** Every one-vs-rest probe of a labelling, with means over the classes. */
export function probeTask(f: FeatureMatrix, ex: LabelledExamples, o: ProbeOptions = {}): TaskProbeResult {
  if (f.rows !== ex.label.length) throw new Error(`probeTask: ${f.rows} feature rows but ${ex.label.length} labels`);
  const classes = ex.classes.map((_, c) => probeClass(f, ex, c, o)).filter((r): r is BinaryProbeResult => r !== null);
  if (classes.length === 0) throw new Error('probeTask: no class has enough examples in both splits');
  const mean = (v: (r: BinaryProbeResult) => number) => classes.reduce((s, r) => s + v(r), 0) / classes.length;
  const meanAccuracy: Record<string, number> = {};
  for (const k of Object.keys(classes[0]!.accuracy)) meanAccuracy[k] = mean((r) => r.accuracy[k]!);
  return {
    classes,
    meanAccuracy,
    ...(o.all ? { meanAccuracyAll: mean((r) => r.accuracyAll!) } : {}),
    meanBestF1: mean((r) => r.bestFeature.f1),
  };
}
