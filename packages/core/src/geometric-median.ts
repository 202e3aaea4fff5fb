/**
 * Geometric median of a set of rows: argmin_y Σ_i ‖x_i − y‖₂, by Weiszfeld's iteration in float64.
 * Gao et al. 2024 (TopK SAEs, section 2.2) initialise b_dec (their b_pre) to it: a robust centre of the data that
 * the encoder input is measured from. Architecture-agnostic, so any SAE can start b_dec there (`--b-dec-init`).
 */
import { type Tensor, dims2 } from './tensor.js';

export interface GeometricMedianOptions {
  /** Iteration cap (Weiszfeld converges linearly; 100 is ample for SAE-sized samples). */
  maxIters?: number;
  /** Stop when the step ‖y_{t+1} − y_t‖ is below tol · (1 + ‖y_t‖). */
  tol?: number;
}

export interface GeometricMedianResult {
  median: Float64Array;
  iterations: number;
  /** Σ_i ‖x_i − median‖, the objective at the result. */
  sumOfDistances: number;
}

/** Σ_i ‖x_i − y‖₂ over the rows of `x` [N, d], in float64. */
export function sumOfDistances(x: Tensor, y: ArrayLike<number>): number {
  const [n, d] = dims2(x, 'sumOfDistances: x');
  let total = 0;
  for (let r = 0; r < n; r++) total += Math.sqrt(squaredDistance(x.data, r * d, y, d));
  return total;
}

/**
 * Weiszfeld: y ← Σ w_i x_i / Σ w_i with w_i = 1 / ‖x_i − y‖, started at the mean. A row that coincides with the
 * current estimate (distance < 1e-12 · scale) is left out of that step, which keeps the weights finite.
 */
export function geometricMedian(x: Tensor, options: GeometricMedianOptions = {}): GeometricMedianResult {
  const [n, d] = dims2(x, 'geometricMedian: x');
  if (n === 0) throw new Error('geometricMedian: the sample has no rows');
  const maxIters = options.maxIters ?? 100;
  const tol = options.tol ?? 1e-7;
  const data = x.data;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) throw new Error(`geometricMedian: row ${Math.floor(i / d)} contains a non-finite value`);
  }

  const y = new Float64Array(d);
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) y[j]! += data[r * d + j]! / n;
  const next = new Float64Array(d);
  let iterations = 0;
  for (; iterations < maxIters; iterations++) {
    const yNorm = Math.sqrt(y.reduce((s, v) => s + v * v, 0));
    const tiny = 1e-12 * (1 + yNorm);
    next.fill(0);
    let weightSum = 0;
    for (let r = 0; r < n; r++) {
      const dist = Math.sqrt(squaredDistance(data, r * d, y, d));
      if (dist < tiny) continue;
      const w = 1 / dist;
      weightSum += w;
      for (let j = 0; j < d; j++) next[j]! += w * data[r * d + j]!;
    }
    if (weightSum === 0) break; // every row sits on y: y is the median
    let step = 0;
    for (let j = 0; j < d; j++) {
      next[j]! /= weightSum;
      step += (next[j]! - y[j]!) ** 2;
    }
    y.set(next);
    if (Math.sqrt(step) <= tol * (1 + yNorm)) {
      iterations++;
      break;
    }
  }
  return { median: y, iterations, sumOfDistances: sumOfDistances(x, y) };
}

function squaredDistance(data: ArrayLike<number>, offset: number, y: ArrayLike<number>, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) {
    const diff = data[offset + j]! - y[j]!;
    s += diff * diff;
  }
  return s;
}
