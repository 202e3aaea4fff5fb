/**
 * LM-side metrics per evaluation window, in both conventions in use, so the sweep can report the field's numbers
 * beside ours and bootstrap over windows.
 *
 * Conventions (documented in docs/metrics.md):
 *  - ours (splice.ts): the activation is replaced at non-BOS positions only — the SAE never saw BOS rows — and
 *    CE is averaged over every next-token prediction of the window (T − 1 per window, including the prediction
 *    made at the BOS position, whose own row is untouched but whose later positions are affected).
 *  - SAEBench / SAELens (sae_bench/evals/core/main.py, get_recons_loss): the SAE reconstruction replaces the
 *    non-special positions (exclude_special_tokens_from_reconstruction), the zero-ablation replaces EVERY
 *    position including BOS, and CE and KL are averaged over positions whose input token is not special
 *    (predictions made at BOS are excluded; KL covers all T positions of the window, CE the first T − 1).
 *
 * For each run the sums per window are returned (not means), so any window-weighted resample of them gives the
 * resampled metric exactly.
 */
import { type HookableLM, type Tensor, klDivergenceRows, nextTokenCrossEntropy } from '@saelab/core';

/** Which rows a replacement edits. */
export type EditRows = 'non-bos' | 'all';

export interface LmEdit {
  name: string;
  rows: EditRows;
  /** Gets the [rows, d] activations to edit (BOS rows excluded for 'non-bos') and returns the same shape. */
  fn: (x: Tensor) => Tensor | Promise<Tensor>;
}

/** Per-window sums of one run. */
export interface WindowSums {
  /** Σ CE over all T − 1 predictions of the window (our convention). */
  ceAll: Float64Array;
  /** Σ CE over predictions made at non-BOS positions (SAEBench's convention). */
  ceNonBos: Float64Array;
  /** Σ KL(clean ‖ this run) over the window's non-BOS positions (all T positions; 0 for the clean run). */
  klNonBos: Float64Array;
}

export interface WindowedLmStats {
  windows: number;
  seqLen: number;
  /** Predictions per window counted by `ceAll` (T − 1) and by `ceNonBos`, and positions counted by `klNonBos`. */
  counts: { predAll: Float64Array; predNonBos: Float64Array; posNonBos: Float64Array };
  clean: WindowSums;
  runs: Record<string, WindowSums>;
}

const sums = (n: number): WindowSums => ({ ceAll: new Float64Array(n), ceNonBos: new Float64Array(n), klNonBos: new Float64Array(n) });

/** Replaces the selected rows of `act` by `fn(those rows)`. */
async function applyEdit(act: Tensor, tokens: Int32Array, bos: number | null, edit: LmEdit): Promise<Tensor> {
  const d = act.shape[1]!;
  const rows: number[] = [];
  for (let i = 0; i < tokens.length; i++) if (edit.rows === 'all' || tokens[i] !== bos) rows.push(i);
  const sub = new Float32Array(rows.length * d);
  rows.forEach((r, i) => sub.set(act.data.subarray(r * d, (r + 1) * d), i * d));
  const y = await edit.fn({ data: sub, shape: [rows.length, d] });
  if (y.shape.length !== 2 || y.shape[0] !== rows.length || y.shape[1] !== d) {
    throw new Error(`${edit.name}: the replacement returned shape [${y.shape.join(', ')}], expected [${rows.length}, ${d}]`);
  }
  const out = act.data.slice();
  rows.forEach((r, i) => out.set(y.data.subarray(i * d, (i + 1) * d), r * d));
  return { data: out, shape: act.shape };
}

/**
 * Runs the clean LM and each edit on `windows` ([n, T] tokens, row-major), `batchWindows` per forward pass, and
 * returns per-window sums of CE (both conventions) and KL to the clean run.
 */
export async function windowedLmStats(
  lm: HookableLM,
  windows: { tokens: Int32Array; batch: number; seqLen: number },
  site: string,
  edits: LmEdit[],
  opts: { batchWindows?: number } = {},
): Promise<WindowedLmStats> {
  const { batch: n, seqLen: T, tokens } = windows;
  if (n === 0) throw new Error('windowedLmStats: no windows to evaluate on');
  if (tokens.length !== n * T) throw new Error(`windowedLmStats: ${tokens.length} tokens for ${n} windows of ${T}`);
  const names = new Set(edits.map((e) => e.name));
  if (names.size !== edits.length || names.has('clean')) throw new Error('windowedLmStats: edit names must be unique and not "clean"');
  const bos = lm.info.bos;
  const per = opts.batchWindows ?? 16;
  const counts = { predAll: new Float64Array(n), predNonBos: new Float64Array(n), posNonBos: new Float64Array(n) };
  for (let w = 0; w < n; w++) {
    counts.predAll[w] = T - 1;
    for (let t = 0; t < T; t++) {
      if (tokens[w * T + t] === bos) continue;
      counts.posNonBos[w]!++;
      if (t < T - 1) counts.predNonBos[w]!++;
    }
  }
  const clean = sums(n);
  const runs: Record<string, WindowSums> = Object.fromEntries(edits.map((e) => [e.name, sums(n)]));

  for (let w0 = 0; w0 < n; w0 += per) {
    const B = Math.min(per, n - w0);
    const ids = tokens.subarray(w0 * T, (w0 + B) * T);
    const cleanLogits = (await lm.run(ids, B, T)).logits!;
    const addCe = (logits: Tensor, into: WindowSums) => {
      const ce = nextTokenCrossEntropy(logits, ids, B, T).perToken;
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T - 1; t++) {
          const v = ce[b * (T - 1) + t]!;
          if (!Number.isFinite(v)) throw new Error(`windowedLmStats: non-finite cross-entropy at ${site}`);
          into.ceAll[w0 + b] += v;
          if (ids[b * T + t] !== bos) into.ceNonBos[w0 + b] += v;
        }
      }
    };
    addCe(cleanLogits, clean);
    for (const e of edits) {
      const into = runs[e.name]!;
      const r = await lm.run(ids, B, T, { replace: { site, fn: (act) => applyEdit(act, ids, bos, e) } });
      addCe(r.logits!, into);
      const kl = klDivergenceRows(cleanLogits, r.logits!);
      for (let i = 0; i < B * T; i++) if (ids[i] !== bos) into.klNonBos[w0 + Math.floor(i / T)] += kl[i]!;
    }
  }
  return { windows: n, seqLen: T, counts, clean, runs };
}

const total = (a: Float64Array, w?: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (w ? w[i]! : 1) * a[i]!;
  return s;
};

/** Per-token means of one run over the windows, optionally weighted per window (bootstrap counts). */
export function runMeans(stats: WindowedLmStats, run: WindowSums, weights?: ArrayLike<number>): { ceAll: number; ceNonBos: number; klNonBos: number } {
  const c = stats.counts;
  return {
    ceAll: total(run.ceAll, weights) / total(c.predAll, weights),
    ceNonBos: total(run.ceNonBos, weights) / total(c.predNonBos, weights),
    klNonBos: total(run.klNonBos, weights) / total(c.posNonBos, weights),
  };
}
