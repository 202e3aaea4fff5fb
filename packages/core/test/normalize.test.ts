import { describe, expect, it } from 'vitest';
import { NormScaleEstimator, estimateNormScale, scaleRows } from '../src/normalize.js';
import { Rng } from '../src/rng.js';
import { type Tensor, zeros } from '../src/tensor.js';

function sample(seed: number, n: number, d: number): Tensor {
  const rng = new Rng(seed);
  const t = zeros([n, d]);
  for (let i = 0; i < t.data.length; i++) t.data[i] = 5 + 30 * rng.normal(); // far from unit scale, non-zero mean
  return t;
}

/** Float64 E‖x‖² over rows. */
const meanSqNorm = (x: Tensor) => {
  const [n, d] = x.shape as [number, number];
  let s = 0;
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) s += x.data[r * d + j]! ** 2;
  return s / n;
};

describe('normalisation scale', () => {
  it('C = √(E‖x‖²), and x/C has E‖x/C‖² = 1', () => {
    const x = sample(1, 300, 16);
    const c = estimateNormScale(x);
    expect(c).toBeCloseTo(Math.sqrt(meanSqNorm(x)), 8);
    expect(meanSqNorm(scaleRows(x, 1 / c))).toBeCloseTo(1, 5);
  });

  it('streaming over uneven batches gives the same C as the whole sample', () => {
    const x = sample(2, 250, 8);
    const e = new NormScaleEstimator();
    let r = 0;
    for (const b of [1, 99, 50, 100]) {
      e.add({ data: x.data.subarray(r * 8, (r + b) * 8), shape: [b, 8] });
      r += b;
    }
    expect(e.count).toBe(250);
    expect(e.value()).toBeCloseTo(estimateNormScale(x), 10);
  });

  it('rejects empty, all-zero and non-finite samples and changing widths', () => {
    expect(() => estimateNormScale(zeros([0, 4]))).toThrow(/no rows/);
    expect(() => estimateNormScale(zeros([3, 4]))).toThrow(/zero/);
    const x = sample(3, 10, 4);
    x.data[17] = Number.POSITIVE_INFINITY;
    expect(() => estimateNormScale(x)).toThrow(/row 4/);
    const e = new NormScaleEstimator();
    e.add(sample(4, 2, 4));
    expect(() => e.add(sample(5, 2, 5))).toThrow(/d=5/);
  });

  it('scaleRows writes into out (in place when out is x) and round-trips', () => {
    const x = sample(6, 5, 3);
    const orig = structuredClone(x);
    const y = scaleRows(x, 0.25);
    expect(x).toEqual(orig);
    y.data.forEach((v, i) => expect(v).toBe(Math.fround(orig.data[i]! * 0.25)));
    scaleRows(y, 4, y);
    y.data.forEach((v, i) => expect(v).toBe(orig.data[i])); // powers of two are exact
    expect(() => scaleRows(x, Number.NaN)).toThrow(/finite/);
  });
});
