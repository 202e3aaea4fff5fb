import { describe, expect, it } from 'vitest';
import { Rng, createOrtEngine, jsEngine, type Tensor } from '../src/index.js';
import { maxRelError } from '../src/reference.js';

const rand = (rng: Rng, shape: number[]): Tensor => ({ data: rng.fillNormal(new Float32Array(shape[0]! * (shape[1] ?? 1))), shape });

describe('gemm: bias folded into the product, and caller-provided output buffers', () => {
  for (const [name, engine] of [
    ['js', jsEngine],
    ['onnxruntime', createOrtEngine({ smallThreshold: 0 })],
  ] as const) {
    it(`${name}: A·B + bias (row broadcast) matches float64, written into a reused out buffer`, async () => {
      const rng = new Rng(1);
      const a = rand(rng, [5, 7]);
      const b = rand(rng, [7, 3]);
      const bias = rand(rng, [3]);
      const ref = new Float64Array(15);
      for (let i = 0; i < 5; i++)
        for (let j = 0; j < 3; j++) {
          let s = bias.data[j]!;
          for (let p = 0; p < 7; p++) s += a.data[i * 7 + p]! * b.data[p * 3 + j]!;
          ref[i * 3 + j] = s;
        }
      // `out` as a view into a larger buffer (how a workspace hands out buffers), pre-filled with garbage.
      const backing = new Float32Array(20).fill(Number.NaN);
      const out = { data: backing.subarray(0, 15), shape: [5, 3] };
      const r = await engine.gemm(a, b, { bias, out });
      expect(r.data).toBe(out.data);
      expect(maxRelError(out.data, ref)).toBeLessThan(1e-5);
      expect(Number.isNaN(backing[15]!)).toBe(true); // nothing written past the view
    });

    it(`${name}: clear errors for a wrong-sized bias or out`, async () => {
      const rng = new Rng(2);
      const a = rand(rng, [4, 2]);
      const b = rand(rng, [2, 3]);
      await expect(engine.gemm(a, b, { bias: rand(rng, [4]) })).rejects.toThrow(/bias has 4 entries but the product has 3 columns/);
      await expect(engine.gemm(a, b, { out: rand(rng, [3, 4]) })).rejects.toThrow(/out has shape \[3, 4\] but the product is \[4, 3\]/);
    });
  }
});

describe('onnxruntime fused affine + top-k', () => {
  it('matches a float64 top-k of x·W + b per row (values, indices, ties to the lower column) and returns the product on request', async () => {
    const rng = new Rng(4);
    const [m, d, n, k] = [37, 16, 50, 6];
    const a = { data: rng.fillNormal(new Float32Array(m * d)), shape: [m, d] };
    const b = { data: rng.fillNormal(new Float32Array(d * n)), shape: [d, n] };
    const bias = { data: rng.fillNormal(new Float32Array(n)), shape: [n] };
    // make row 0 all-equal to exercise ties: columns 0..k−1 must win
    a.data.fill(0, 0, d);
    const engine = createOrtEngine({ smallThreshold: 0 });
    bias.data.fill(0.5);
    const r = await engine.affineTopK!(a, b, bias, k, true);
    for (let i = 0; i < m; i++) {
      const row = Array.from({ length: n }, (_, j) => {
        let s = bias.data[j]!;
        for (let p = 0; p < d; p++) s += a.data[i * d + p]! * b.data[p * n + j]!;
        return { j, v: s };
      }).sort((x, y) => y.v - x.v || x.j - y.j);
      for (let s = 0; s < k; s++) {
        expect(r.indices[i * k + s]).toBe(row[s]!.j);
        expect(r.values[i * k + s]).toBeCloseTo(row[s]!.v, 4);
      }
    }
    expect(r.product!.shape).toEqual([m, n]);
    expect(Array.from(r.indices.subarray(0, k))).toEqual([0, 1, 2, 3, 4, 5]);
    expect((await engine.affineTopK!(a, b, bias, k, false)).product).toBeNull();
  });
});
