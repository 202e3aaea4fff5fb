/**
 * Float64 reference kernels, written for clarity, used only to check the float32 kernels in tests.
 * Matrices are { data: Float64Array, rows, cols }, row-major.
 */
import type { Tensor } from './tensor.js';

export interface Mat64 {
  data: Float64Array;
  rows: number;
  cols: number;
}

export function toMat64(t: Tensor): Mat64 {
  if (t.shape.length === 1) return { data: Float64Array.from(t.data), rows: 1, cols: t.shape[0]! };
  return { data: Float64Array.from(t.data), rows: t.shape[0]!, cols: t.shape[1]! };
}

export function mat64(rows: number, cols: number, fill: (i: number, j: number) => number = () => 0): Mat64 {
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) data[i * cols + j] = fill(i, j);
  return { data, rows, cols };
}

export const at = (m: Mat64, i: number, j: number): number => m.data[i * m.cols + j]!;

/** Textbook triple loop. */
export function matmul64(a: Mat64, b: Mat64): Mat64 {
  if (a.cols !== b.rows) throw new Error(`matmul64: ${a.rows}x${a.cols} · ${b.rows}x${b.cols}`);
  return mat64(a.rows, b.cols, (i, j) => {
    let s = 0;
    for (let p = 0; p < a.cols; p++) s += at(a, i, p) * at(b, p, j);
    return s;
  });
}

/** a[i,j] + v[j] (row broadcast); sign −1 subtracts. */
export function addRow64(a: Mat64, v: ArrayLike<number>, sign = 1): Mat64 {
  return mat64(a.rows, a.cols, (i, j) => at(a, i, j) + sign * v[j]!);
}

export function columnSums64(a: Mat64): Float64Array {
  const out = new Float64Array(a.cols);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j] += at(a, i, j);
  return out;
}

/** Largest |a − b| / max(1, |b|) over all elements (b is the reference). */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxRelError: lengths ${a.length} and ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return worst;
}

/**
 * Central finite differences of a scalar float64 function at x (in place, restored after).
 * Returns d f / d x_i for every i in `indices` (default: all).
 */
export function finiteDifferences(
  f: () => number,
  x: Float64Array,
  h = 1e-6,
  indices: Iterable<number> = x.keys(),
): Map<number, number> {
  const out = new Map<number, number>();
  for (const i of indices) {
    const x0 = x[i]!;
    x[i] = x0 + h;
    const fp = f();
    x[i] = x0 - h;
    const fm = f();
    x[i] = x0;
    out.set(i, (fp - fm) / (2 * h));
  }
  return out;
}

/**
 * Causal grouped-query attention, one (sequence, head, query) at a time: out[b, t, h] = Σ_{s ≤ t} softmax_s(q·k_s/√hs)
 * v_s with kv head ⌊h / (heads / kvHeads)⌋; q [B, T, H, hs], k and v [B, T, KV, hs] row-major.
 */
export function causalAttention64(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>,
  sh: { batch: number; seqLen: number; heads: number; kvHeads: number; headSize: number },
): Float64Array {
  const { batch: B, seqLen: T, heads: H, kvHeads: KV, headSize: hs } = sh;
  const out = new Float64Array(B * T * H * hs);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / (H / KV));
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * H + h) * hs;
        const scores: number[] = [];
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < hs; i++) dot += q[qo + i]! * k[((b * T + s) * KV + g) * hs + i]!;
          scores.push(dot / Math.sqrt(hs));
        }
        const max = Math.max(...scores);
        const w = scores.map((x) => Math.exp(x - max));
        const z = w.reduce((a, c) => a + c, 0);
        for (let s = 0; s <= t; s++)
          for (let i = 0; i < hs; i++) out[qo + i] += (w[s]! / z) * v[((b * T + s) * KV + g) * hs + i]!;
      }
    }
  return out;
}
