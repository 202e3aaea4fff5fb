/**
 * Synthetic activations with known ground-truth features: each row is a sparse non-negative combination of the
 * rows of a random unit-norm dictionary. Used to check that an SAE recovers the features (MMCS) and in the docs.
 */
import { Rng } from '../rng.js';
import { type Tensor, zeros } from '../tensor.js';

export interface SyntheticOptions {
  rows: number;
  dIn: number;
  /** Number of true features. */
  features: number;
  /** Expected number of active features per row. */
  meanActive: number;
  seed: number;
}

/** Returns { x [rows, dIn], dictionary [features, dIn] (unit rows) }; magnitudes are U(0.5, 1.5). */
export function syntheticSparseData(o: SyntheticOptions): { x: Tensor; dictionary: Tensor } {
  const rng = new Rng(o.seed);
  const dictionary = zeros([o.features, o.dIn]);
  rng.fillNormal(dictionary.data);
  for (let i = 0; i < o.features; i++) {
    const row = dictionary.data.subarray(i * o.dIn, (i + 1) * o.dIn);
    const n = Math.hypot(...row);
    for (let j = 0; j < o.dIn; j++) row[j] = row[j]! / n;
  }
  const p = o.meanActive / o.features;
  const x = zeros([o.rows, o.dIn]);
  for (let r = 0; r < o.rows; r++) {
    const out = x.data.subarray(r * o.dIn, (r + 1) * o.dIn);
    for (let i = 0; i < o.features; i++) {
      if (rng.uniform() >= p) continue;
      const mag = 0.5 + rng.uniform();
      for (let j = 0; j < o.dIn; j++) out[j] += mag * dictionary.data[i * o.dIn + j]!;
    }
  }
  return { x, dictionary };
}
