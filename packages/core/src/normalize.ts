/**
 * Input normalisation (Gemma Scope convention): one scalar C with E‖x/C‖² = 1, i.e. C = √(E‖x‖²) over
 * the rows of a sample of the activation stream. This module estimates C and applies it; folding C into a
 * trained SAE (the same for all four architectures) is `foldInputScale` in sae/ops.ts.
 */
import { type Tensor, dims2 } from './tensor.js';

/** Streaming estimate of √(E‖x‖²), accumulated in float64 over batches of rows. */
export class NormScaleEstimator {
  private sumSq = 0;
  private rows = 0;
  private dim = -1;

  /** Adds a batch [B, d]; throws on a dimension change or a non-finite value (naming its row). */
  add(batch: Tensor): void {
    const [b, d] = dims2(batch, 'NormScaleEstimator.add: batch');
    if (this.dim >= 0 && d !== this.dim) throw new Error(`NormScaleEstimator.add: batch has d=${d}, earlier batches had d=${this.dim}`);
    this.dim = d;
    const x = batch.data;
    for (let r = 0; r < b; r++) {
      let s = 0;
      for (let j = r * d; j < (r + 1) * d; j++) s += x[j]! * x[j]!;
      if (!Number.isFinite(s)) throw new Error(`NormScaleEstimator.add: row ${this.rows + r} contains non-finite values`);
      this.sumSq += s;
    }
    this.rows += b;
  }

  get count(): number {
    return this.rows;
  }

  /** C = √(Σ‖x‖² / N). Throws if no rows were seen or every row is zero (C would be 0). */
  value(): number {
    if (this.rows === 0) throw new Error('estimateNormScale: no rows in the sample');
    const c = Math.sqrt(this.sumSq / this.rows);
    if (!(c > 0)) throw new Error('estimateNormScale: every sampled activation is zero, so no scale makes E‖x/C‖² = 1');
    return c;
  }
}

/** C = √(E‖x‖²) over the rows of `sample` [N, d], so that E‖x/C‖² = 1. */
export function estimateNormScale(sample: Tensor): number {
  const e = new NormScaleEstimator();
  e.add(sample);
  return e.value();
}

/**
 * x · s elementwise (use s = 1/C to normalise, s = C to undo). Writes into `out` if given (may be `x` itself,
 * for an allocation-free in-place scale), else returns a new tensor.
 */
export function scaleRows(x: Tensor, s: number, out?: Tensor): Tensor {
  if (!Number.isFinite(s)) throw new Error(`scaleRows: scale must be finite, got ${s}`);
  const o = out ?? { data: new Float32Array(x.data.length), shape: [...x.shape] };
  if (o.data.length !== x.data.length) throw new Error(`scaleRows: out has ${o.data.length} elements, x has ${x.data.length}`);
  const a = x.data;
  const b = o.data;
  for (let i = 0; i < a.length; i++) b[i] = a[i]! * s;
  return o;
}
