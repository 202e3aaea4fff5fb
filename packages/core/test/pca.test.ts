import { describe, expect, it } from 'vitest';
import { fitPca, pcaReconstruct, symmetricEigen } from '../src/pca.js';
import { Rng } from '../src/rng.js';
import { zeros } from '../src/tensor.js';

const source = (data: Float32Array, d: number) => ({ rows: data.length / d, d, readRows: async (s: number, n: number) => data.slice(s * d, (s + n) * d) });

describe('symmetric eigendecomposition', () => {
  it('A v = λ v, orthonormal vectors, descending values, trace preserved', () => {
    const rng = new Rng(1);
    const n = 12;
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = i; j < n; j++) a[i * n + j] = a[j * n + i] = rng.normal();
    const { values, vectors } = symmetricEigen(a, n);
    for (let k = 0; k < n; k++) {
      for (let i = 0; i < n; i++) {
        let av = 0;
        for (let j = 0; j < n; j++) av += a[i * n + j]! * vectors[k * n + j]!;
        expect(av).toBeCloseTo(values[k]! * vectors[k * n + i]!, 10);
      }
      for (let l = 0; l < n; l++) {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += vectors[k * n + i]! * vectors[l * n + i]!;
        expect(dot).toBeCloseTo(k === l ? 1 : 0, 10);
      }
      if (k > 0) expect(values[k]!).toBeLessThanOrEqual(values[k - 1]!);
    }
    let tr = 0;
    for (let i = 0; i < n; i++) tr += a[i * n + i]!;
    expect(values.reduce((s, v) => s + v, 0)).toBeCloseTo(tr, 10);
  });
});

describe('PCA baseline', () => {
  it('recovers a planted low-rank subspace and its reconstruction error is the sum of the dropped eigenvalues', async () => {
    // x = μ + 5 z₁ e₁' + 2 z₂ e₂' + 0.1 noise in d = 6, with e₁', e₂' a known rotation of the axes.
    const rng = new Rng(4);
    const d = 6;
    const n = 20_000;
    const mu = [3, -1, 0, 2, 0, 1];
    const u1 = [1, 1, 0, 0, 0, 0].map((v) => v / Math.SQRT2);
    const u2 = [0, 0, 1, -1, 0, 0].map((v) => v / Math.SQRT2);
    const data = new Float32Array(n * d);
    for (let r = 0; r < n; r++) {
      const z1 = 5 * rng.normal();
      const z2 = 2 * rng.normal();
      for (let j = 0; j < d; j++) data[r * d + j] = mu[j]! + z1 * u1[j]! + z2 * u2[j]! + 0.1 * rng.normal();
    }
    const pca = await fitPca(source(data, d));
    expect(pca.rows).toBe(n);
    expect(Math.abs(pca.components.slice(0, d).reduce((s, v, j) => s + v * u1[j]!, 0))).toBeGreaterThan(0.999);
    expect(Math.abs(pca.components.slice(d, 2 * d).reduce((s, v, j) => s + v * u2[j]!, 0))).toBeGreaterThan(0.999);
    expect(pca.eigenvalues[0]).toBeCloseTo(25, 0);
    expect(pca.eigenvalues[1]).toBeCloseTo(4, 0);
    // Rank r on the training rows: mean squared error per row = Σ_{k ≥ r} λ_k (exact for the fit's own rows).
    const x = { data, shape: [n, d] };
    for (const rank of [0, 1, 2, 6]) {
      const y = pcaReconstruct(pca, x, rank);
      let sse = 0;
      for (let i = 0; i < data.length; i++) sse += (data[i]! - y.data[i]!) ** 2;
      const want = Array.from(pca.eigenvalues).slice(rank).reduce((s, v) => s + v, 0);
      expect(sse / n).toBeCloseTo(want, rank === 6 ? 6 : 3);
    }
  });

  it('strided subsampling reads at most maxRows rows', async () => {
    const rng = new Rng(5);
    const data = new Float32Array(1000 * 3);
    for (let i = 0; i < data.length; i++) data[i] = rng.normal();
    const pca = await fitPca(source(data, 3), { maxRows: 100 });
    expect(pca.rows).toBe(100);
    expect(() => pcaReconstruct(pca, zeros([2, 3]), 4)).toThrow(/rank must be an integer/);
  });
});
