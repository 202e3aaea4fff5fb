/**
 * The held-out rows cut into resampling units for the bootstrap: one block per evaluation window where an LM
 * supplied them (tokens of one window are correlated, so windows — not tokens — are the independent units; a
 * window's rows are its non-BOS positions, in harvest order), else fixed runs of `ROWS_PER_BLOCK` consecutive rows.
 * SAEBench's explained variance takes its mean per evaluation batch: `batchWindows` windows (SAEBench's
 * batch_size_prompts, 16 by default), or `batchWindows` row blocks without an LM.
 */
import type { Tensor } from '@saelab/core';
import type { SweepData } from './dataset.js';

export const ROWS_PER_BLOCK = 128;

export interface EvalBlocks {
  kind: 'window' | 'rows';
  /** Held-out rows per block, in order; they sum to the held-out row count. */
  rows: number[];
}

export function evalBlocks(data: Pick<SweepData, 'heldOutRows' | 'evalWindows' | 'lm'>): EvalBlocks {
  const ev = data.evalWindows;
  const bos = data.lm?.lm.info.bos ?? null;
  if (ev) {
    const rows: number[] = [];
    for (let w = 0; w < ev.windows; w++) {
      let n = 0;
      for (let t = 0; t < ev.seqLen; t++) if (ev.tokens[w * ev.seqLen + t] !== bos) n++;
      rows.push(n);
    }
    if (rows.reduce((a, b) => a + b, 0) === data.heldOutRows) return { kind: 'window', rows };
  }
  const rows: number[] = [];
  for (let s = 0; s < data.heldOutRows; s += ROWS_PER_BLOCK) rows.push(Math.min(ROWS_PER_BLOCK, data.heldOutRows - s));
  return { kind: 'rows', rows };
}

/**
 * Calls `fn` on the held-out rows, `groupBlocks` blocks at a time (one SAEBench evaluation batch), with the
 * index of the group's first block.
 */
export async function forEachEvalGroup(
  data: Pick<SweepData, 'heldOut' | 'd'>,
  blocks: EvalBlocks,
  groupBlocks: number,
  fn: (x: Tensor, firstBlock: number) => void | Promise<void>,
): Promise<void> {
  let row = 0;
  for (let b = 0; b < blocks.rows.length; b += groupBlocks) {
    const n = blocks.rows.slice(b, b + groupBlocks).reduce((a, c) => a + c, 0);
    if (n === 0) continue;
    const data2 = await data.heldOut.readRows(row, n);
    await fn({ data: data2, shape: [n, data.d] }, b);
    row += n;
  }
}

/**
 * Per-block Σ_rows (x_j − μ_j) and Σ_rows (x_j − μ_j)² (float64, [blocks, d]) about the full held-out mean μ:
 * FVU's denominator under any block resample. Centring first keeps the second moments free of the cancellation
 * raw moments would suffer on a mean-dominated stream; the resampled variance does not depend on the shift.
 */
export interface BlockMoments {
  d: number;
  rows: number[];
  s1: Float64Array;
  s2: Float64Array;
}

export async function blockMoments(data: Pick<SweepData, 'heldOut' | 'd'>, blocks: EvalBlocks): Promise<BlockMoments> {
  const d = data.d;
  const nb = blocks.rows.length;
  const total = blocks.rows.reduce((a, b) => a + b, 0);
  const x = await data.heldOut.readRows(0, total);
  const mu = new Float64Array(d);
  for (let r = 0; r < total; r++) for (let j = 0; j < d; j++) mu[j] += x[r * d + j]!;
  for (let j = 0; j < d; j++) mu[j] /= total;
  const s1 = new Float64Array(nb * d);
  const s2 = new Float64Array(nb * d);
  let row = 0;
  for (let b = 0; b < nb; b++) {
    for (let r = row; r < row + blocks.rows[b]!; r++) {
      for (let j = 0; j < d; j++) {
        const c = x[r * d + j]! - mu[j]!;
        s1[b * d + j] += c;
        s2[b * d + j] += c * c;
      }
    }
    row += blocks.rows[b]!;
  }
  return { d, rows: blocks.rows, s1, s2 };
}

/**
 * Σ_rows Σ_j (x − mean)² of the resample that takes block b `w[b]` times (the mean is the resample's own):
 * Σ_j [Σ_b w_b s2_bj − (Σ_b w_b s1_bj)² / Σ_b w_b n_b].
 */
export function resampledTotalVariance(m: BlockMoments, w: ArrayLike<number>): number {
  const { d, rows } = m;
  const nb = rows.length;
  let n = 0;
  for (let b = 0; b < nb; b++) n += w[b]! * rows[b]!;
  let tv = 0;
  for (let j = 0; j < d; j++) {
    let a1 = 0;
    let a2 = 0;
    for (let b = 0; b < nb; b++) {
      a1 += w[b]! * m.s1[b * d + j]!;
      a2 += w[b]! * m.s2[b * d + j]!;
    }
    tv += a2 - (a1 * a1) / n;
  }
  return tv;
}
