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

describe('onnxruntime causal grouped-query attention', () => {
  it('matches the float64 reference (GQA 4 heads over 2 kv heads, odd T, several sequences)', async () => {
    const { causalAttention64 } = await import('../src/reference.js');
    const engine = createOrtEngine();
    for (const sh of [
      { batch: 3, seqLen: 7, heads: 4, kvHeads: 2, headSize: 8 },
      { batch: 1, seqLen: 5, heads: 3, kvHeads: 3, headSize: 4 },
      { batch: 2, seqLen: 1, heads: 2, kvHeads: 1, headSize: 2 },
    ]) {
      const rng = new Rng(sh.seqLen);
      const q = rng.fillNormal(new Float32Array(sh.batch * sh.seqLen * sh.heads * sh.headSize), 2);
      const k = rng.fillNormal(new Float32Array(sh.batch * sh.seqLen * sh.kvHeads * sh.headSize), 2);
      const v = rng.fillNormal(new Float32Array(k.length));
      const out = await engine.causalAttention!(q, k, v, sh);
      expect(out.length).toBe(q.length);
      expect(maxRelError(out, causalAttention64(q, k, v, sh)), JSON.stringify(sh)).toBeLessThan(1e-5);
    }
    // Causal: changing the last position's key and value leaves every earlier output unchanged.
    const sh = { batch: 1, seqLen: 6, heads: 2, kvHeads: 1, headSize: 4 };
    const rng = new Rng(9);
    const q = rng.fillNormal(new Float32Array(6 * 2 * 4));
    const k = rng.fillNormal(new Float32Array(6 * 4));
    const v = rng.fillNormal(new Float32Array(6 * 4));
    const a = await engine.causalAttention!(q, k, v, sh);
    k.fill(5, 5 * 4);
    v.fill(-5, 5 * 4);
    const b = await engine.causalAttention!(q, k, v, sh);
    expect(b.subarray(0, 5 * 2 * 4)).toEqual(a.subarray(0, 5 * 2 * 4));
    expect(b.subarray(5 * 2 * 4)).not.toEqual(a.subarray(5 * 2 * 4));
    await expect(engine.causalAttention!(q, k, v, { ...sh, heads: 3, kvHeads: 2 })).rejects.toThrow(/not a multiple/);
    await expect(engine.causalAttention!(q, k, v, { ...sh, seqLen: 5 })).rejects.toThrow(/expected 40\/20\/20/);
  });
});
