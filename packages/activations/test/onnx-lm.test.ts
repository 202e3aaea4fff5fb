import { describe, expect, it } from 'vitest';
import { Rng } from '@saelab/core';
import { OnnxLM } from '../src/onnx-lm.js';
import { buildTinyOnnxLm } from './helpers.js';

/** float64 reference of the same computation. */
function reference(m: ReturnType<typeof buildTinyOnnxLm>, V: number, d: number, tokens: Int32Array, B: number, T: number) {
  const h0 = new Float64Array(B * T * d);
  const h1 = new Float64Array(B * T * d);
  const logits = new Float64Array(B * T * V);
  for (let b = 0; b < B; b++) {
    const acc = new Float64Array(d);
    for (let t = 0; t < T; t++) {
      const r = b * T + t;
      for (let j = 0; j < d; j++) {
        h0[r * d + j] = m.E[tokens[r]! * d + j]!;
        acc[j] += h0[r * d + j]!;
      }
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let i = 0; i < d; i++) s += acc[i]! * m.W[i * d + j]!;
        h1[r * d + j] = Math.tanh(s);
      }
      for (let v = 0; v < V; v++) {
        let s = 0;
        for (let i = 0; i < d; i++) s += h1[r * d + i]! * m.U[i * V + v]!;
        logits[r * V + v] = s;
      }
    }
  }
  return { h0, h1, logits };
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('OnnxLM (a tiny ONNX model built by the test)', () => {
  const V = 11;
  const d = 6;
  const m = buildTinyOnnxLm(V, d, 4);

  it('maps named outputs to sites and matches a float64 reference', async () => {
    const lm = await OnnxLM.create(m.bytes, { sites: { 'blocks.0.hook_resid_pre': 'hidden_0', 'blocks.0.hook_resid_post': 'hidden_1' }, bos: 0 });
    expect(lm.sites()).toEqual(['blocks.0.hook_resid_pre', 'blocks.0.hook_resid_post']);
    expect(lm.siteDim('blocks.0.hook_resid_post')).toBe(d);
    expect(lm.info.vocabSize).toBe(V);
    const B = 2;
    const T = 5;
    const rng = new Rng(1);
    const tokens = Int32Array.from({ length: B * T }, () => rng.int(V));
    const r = await lm.run(tokens, B, T, { read: lm.sites() });
    const ref = reference(m, V, d, tokens, B, T);
    expect(r.acts['blocks.0.hook_resid_pre']!.shape).toEqual([B * T, d]);
    expect(maxAbsDiff(r.acts['blocks.0.hook_resid_pre']!.data, ref.h0)).toBeLessThan(1e-6);
    expect(maxAbsDiff(r.acts['blocks.0.hook_resid_post']!.data, ref.h1)).toBeLessThan(1e-5);
    expect(maxAbsDiff(r.logits!.data, ref.logits)).toBeLessThan(1e-4);
    const short = await lm.run(tokens, B, T, { read: ['blocks.0.hook_resid_post'], skipLogits: true });
    expect(short.logits).toBeUndefined();
  });

  it('defaults sites to output names and fails clearly on misuse', async () => {
    const lm = await OnnxLM.create(m.bytes);
    expect(lm.sites()).toEqual(['hidden_0', 'hidden_1']);
    await expect(lm.run(Int32Array.of(1, 2), 1, 2, { read: ['nope'] })).rejects.toThrow(/unknown hook site "nope"/);
    await expect(lm.run(Int32Array.of(1, 2), 1, 2, { replace: { site: 'hidden_0', fn: (a) => a } })).rejects.toThrow(/not supported/);
    await expect(OnnxLM.create(m.bytes, { sites: { x: 'missing' } })).rejects.toThrow(/missing output "missing"/);
    await expect(OnnxLM.create(new Uint8Array([1, 2, 3]))).rejects.toThrow(/cannot load/);
  });
});
