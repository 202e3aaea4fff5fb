import { describe, expect, it } from 'vitest';
import { geometricMedian, sumOfDistances } from '../src/geometric-median.js';
import { Rng } from '../src/rng.js';
import type { Tensor } from '../src/tensor.js';

const rows = (values: number[][]): Tensor => ({ data: Float32Array.from(values.flat()), shape: [values.length, values[0]!.length] });

function gaussianRows(n: number, d: number, rng: Rng, centre = 0): Tensor {
  const data = new Float32Array(n * d);
  for (let i = 0; i < data.length; i++) data[i] = centre + rng.normal();
  return { data, shape: [n, d] };
}

describe('geometricMedian (Weiszfeld)', () => {
  it('is the ordinary median in one dimension', () => {
    const values = [5, -3, 0.5, 12, 7, 2, -1];
    const sorted = [...values].sort((a, b) => a - b);
    const r = geometricMedian(rows(values.map((v) => [v])), { maxIters: 1000, tol: 1e-12 });
    expect(r.median[0]).toBeCloseTo(sorted[3]!, 6);
  });

  it('is the centre of a symmetric configuration, and the vertex of a triangle with an angle ≥ 120°', () => {
    const square = geometricMedian(rows([[1, 1], [1, -1], [-1, 1], [-1, -1]]));
    expect(Math.hypot(square.median[0]!, square.median[1]!)).toBeLessThan(1e-6);
    // Fermat point: with a 150° angle at (0, 0), the median is that vertex (the iteration must step onto a data point).
    const a = (150 * Math.PI) / 180;
    const obtuse = geometricMedian(rows([[0, 0], [1, 0], [Math.cos(a), Math.sin(a)]]), { maxIters: 2000, tol: 1e-12 });
    expect(Math.hypot(obtuse.median[0]!, obtuse.median[1]!)).toBeLessThan(1e-3);
  });

  it('minimises the sum of distances: no random perturbation and not the mean does better', () => {
    const rng = new Rng(3);
    const x = gaussianRows(400, 8, rng);
    // Skew the cloud so the median and the mean differ.
    for (let r = 0; r < 400; r++) x.data[r * 8]! += r % 5 === 0 ? 20 : 0;
    const { median, sumOfDistances: best } = geometricMedian(x, { maxIters: 500, tol: 1e-10 });
    expect(best).toBeCloseTo(sumOfDistances(x, median), 9);
    const mean = new Float64Array(8);
    for (let r = 0; r < 400; r++) for (let j = 0; j < 8; j++) mean[j]! += x.data[r * 8 + j]! / 400;
    expect(best).toBeLessThan(sumOfDistances(x, mean) - 1);
    for (let t = 0; t < 50; t++) {
      const y = median.map((v) => v + 1e-3 * rng.normal());
      expect(sumOfDistances(x, y)).toBeGreaterThanOrEqual(best - 1e-9 * best);
    }
  });

  it('is robust to outliers where the mean is not', () => {
    const rng = new Rng(11);
    const x = gaussianRows(200, 4, rng, 1);
    for (let r = 0; r < 20; r++) x.data[r * 4 + 2] = 1000; // 10% of rows far away along one axis
    const { median } = geometricMedian(x);
    expect(Math.abs(median[2]! - 1)).toBeLessThan(0.5);
  });

  it('rejects non-finite rows and empty samples by name', () => {
    expect(() => geometricMedian(rows([[0, 1], [Number.NaN, 2]]))).toThrow(/row 1 contains a non-finite value/);
    expect(() => geometricMedian({ data: new Float32Array(0), shape: [0, 3] })).toThrow(/no rows/);
  });
});
