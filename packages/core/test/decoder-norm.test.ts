import { describe, expect, it } from 'vitest';
import { foldDecoderNorms, normalizeRows, normalizeRows64Ts, removeParallelGradient, removeParallelGradientTs, rowNorms } from '../src/decoder-norm.js';
import { normalizeRowsWasm, projectRowsWasm, transposeWasm, wasmRowKernelsAvailable } from '../src/fast/wasm.js';
import { Rng } from '../src/rng.js';
import { type Tensor, zeros } from '../src/tensor.js';

function randn(rng: Rng, shape: number[], scale = 1, offset = 0): Tensor {
  const t = zeros(shape);
  for (let i = 0; i < t.data.length; i++) t.data[i] = offset + scale * rng.normal();
  return t;
}

const row = (t: Tensor, i: number) => Array.from(t.data.subarray(i * t.shape[1]!, (i + 1) * t.shape[1]!));
const dot = (a: number[], b: number[]) => a.reduce((s, v, j) => s + v * b[j]!, 0);

describe('row norms', () => {
  it('rowNorms matches a float64 reference', () => {
    const W = randn(new Rng(1), [11, 6], 2);
    const n = rowNorms(W);
    for (let i = 0; i < 11; i++) expect(n[i]).toBeCloseTo(Math.sqrt(dot(row(W, i), row(W, i))), 5);
  });

  it('normalizeRows sets every row to the target norm, keeps its direction, returns the old norms, skips zero rows', () => {
    const W = randn(new Rng(2), [9, 5], 3);
    W.data.fill(0, 4 * 5, 5 * 5); // row 4 is zero
    const before = structuredClone(W);
    const old = normalizeRows(W, 0.1);
    for (let i = 0; i < 9; i++) {
      const r0 = row(before, i);
      const r1 = row(W, i);
      expect(old[i]).toBeCloseTo(Math.sqrt(dot(r0, r0)), 5);
      if (i === 4) {
        expect(r1.every((v) => v === 0)).toBe(true);
        continue;
      }
      expect(Math.sqrt(dot(r1, r1))).toBeCloseTo(0.1, 6);
      expect(dot(r0, r1) / (Math.sqrt(dot(r0, r0)) * Math.sqrt(dot(r1, r1)))).toBeCloseTo(1, 6);
    }
    expect(() => normalizeRows(W, 0)).toThrow(/target/);
  });
});

describe('removeParallelGradient', () => {
  it('matches dW_i − (dW_i·W_i/‖W_i‖²) W_i in float64 and leaves gradients orthogonal to rows', () => {
    const rng = new Rng(3);
    const W = randn(rng, [8, 7], 0.5);
    const dW = randn(rng, [8, 7]);
    const g0 = structuredClone(dW);
    removeParallelGradient(W, dW);
    for (let i = 0; i < 8; i++) {
      const w = row(W, i);
      const g = row(g0, i);
      const c = dot(g, w) / dot(w, w);
      row(dW, i).forEach((v, j) => expect(v).toBeCloseTo(g[j]! - c * w[j]!, 6));
      expect(Math.abs(dot(row(dW, i), w))).toBeLessThan(1e-5);
    }
  });

  it('a step along the projected gradient changes row norms only to second order', () => {
    const rng = new Rng(4);
    const W = randn(rng, [5, 6]);
    normalizeRows(W);
    const dW = randn(rng, [5, 6]);
    removeParallelGradient(W, dW);
    const eps = 1e-3;
    const stepped = zeros([5, 6]);
    for (let i = 0; i < 30; i++) stepped.data[i] = W.data[i]! + eps * dW.data[i]!;
    const n = rowNorms(stepped);
    for (let i = 0; i < 5; i++) {
      const g = row(dW, i);
      // ‖w + εg‖ = √(1 + ε²‖g‖²) exactly when g ⟂ w and ‖w‖ = 1
      expect(n[i]).toBeCloseTo(Math.sqrt(1 + eps * eps * dot(g, g)), 6);
    }
  });

  it('rejects a gradient of the wrong shape', () => {
    expect(() => removeParallelGradient(zeros([3, 4]), zeros([4, 3]))).toThrow(/dW/);
  });
});

describe('foldDecoderNorms', () => {
  // Float64 references for two different SAE encoders, written from docs/specs/sae.md:
  // pi = (x − b_dec) W_enc + b_enc;  ReLU: f = max(pi, 0);  JumpReLU: f = pi·H(pi − θ);  x̂ = f W_dec + b_dec
  function reconstruct(x: Tensor, W_enc: Tensor, b_enc: Tensor, W_dec: Tensor, b_dec: Tensor, theta: Tensor | null): number[] {
    const [B, d] = x.shape as [number, number];
    const m = W_dec.shape[0]!;
    const out: number[] = [];
    for (let r = 0; r < B; r++) {
      const f: number[] = [];
      for (let i = 0; i < m; i++) {
        let pi = b_enc.data[i]!;
        for (let j = 0; j < d; j++) pi += (x.data[r * d + j]! - b_dec.data[j]!) * W_enc.data[j * m + i]!;
        f.push(theta ? (pi > theta.data[i]! ? pi : 0) : Math.max(pi, 0));
      }
      for (let j = 0; j < d; j++) {
        let s = b_dec.data[j]!;
        for (let i = 0; i < m; i++) s += f[i]! * W_dec.data[i * d + j]!;
        out.push(s);
      }
    }
    return out;
  }

  for (const arch of ['relu', 'jumprelu'] as const) {
    it(`${arch}: decode(encode(x)) is unchanged and decoder rows become unit norm`, () => {
      const rng = new Rng(arch === 'relu' ? 5 : 6);
      const d = 6;
      const m = 12;
      const x = randn(rng, [20, d]);
      const W_enc = randn(rng, [d, m], 0.5);
      const W_dec = randn(rng, [m, d], 1);
      for (let i = 0; i < m; i++) for (let j = 0; j < d; j++) W_dec.data[i * d + j] = W_dec.data[i * d + j]! * (0.2 + i / 3); // varied norms
      const b_enc = randn(rng, [m], 0.3);
      const b_dec = randn(rng, [d], 0.3);
      const theta = arch === 'jumprelu' ? randn(rng, [m], 0.1, 0.3) : null;
      const before = reconstruct(x, W_enc, b_enc, W_dec, b_dec, theta);
      const oldNorms = rowNorms(W_dec);
      const norms = foldDecoderNorms({ W_enc, W_dec, perLatent: theta ? [b_enc, theta] : [b_enc] });
      norms.forEach((n, i) => expect(n).toBeCloseTo(oldNorms[i]!, 5));
      rowNorms(W_dec).forEach((n) => expect(n).toBeCloseTo(1, 6));
      const after = reconstruct(x, W_enc, b_enc, W_dec, b_dec, theta);
      let nonTrivial = 0;
      before.forEach((v, k) => {
        expect(after[k]).toBeCloseTo(v, 4);
        if (Math.abs(v - b_dec.data[k % d]!) > 1e-3) nonTrivial++;
      });
      expect(nonTrivial).toBeGreaterThan(before.length / 2); // latents actually fired
    });
  }

  it('checks shapes before touching anything', () => {
    const W_dec = randn(new Rng(7), [4, 3]);
    const copy = structuredClone(W_dec);
    expect(() => foldDecoderNorms({ W_enc: zeros([4, 3]), W_dec })).toThrow(/W_enc/);
    expect(() => foldDecoderNorms({ W_enc: zeros([3, 4]), W_dec, perLatent: [zeros([3])] })).toThrow(/perLatent\[0\]/);
    expect(W_dec).toEqual(copy);
  });
});

describe('decoder-row WebAssembly kernels', () => {
  it.skipIf(!wasmRowKernelsAvailable())('projection and normalisation equal the TypeScript loops bit for bit (odd m, zero rows, tiny and huge rows)', () => {
    const rng = new Rng(5);
    for (const [m, d] of [[1, 3], [7, 5], [4096, 512], [33, 768]] as const) {
      const w = Float32Array.from({ length: m * d }, (_, i) => rng.normal() * 10 ** ((Math.floor(i / d) % 9) - 4));
      const g = Float32Array.from({ length: m * d }, () => rng.normal());
      if (m > 2) w.fill(0, d, 2 * d); // a row with no direction
      const [w2, g2] = [w.slice(), g.slice()];
      removeParallelGradientTs(w, g, m, d);
      projectRowsWasm(w2, g2, m, d);
      expect(Buffer.from(g2.buffer).equals(Buffer.from(g.buffer)), `projection, [${m}, ${d}]`).toBe(true);
      const norms = normalizeRows64Ts(w, m, d, 1.5);
      const norms2 = normalizeRowsWasm(w2, m, d, 1.5);
      expect(Buffer.from(w2.buffer).equals(Buffer.from(w.buffer)), `normalisation, [${m}, ${d}]`).toBe(true);
      expect(Array.from(norms2)).toEqual(Array.from(norms));
    }
  });

  it.skipIf(!wasmRowKernelsAvailable())('transposeWasm is the transpose; shapes not a multiple of 4 are refused', () => {
    const rng = new Rng(6);
    const [r, c] = [12, 20];
    const a = Float32Array.from({ length: r * c }, () => rng.normal());
    const out = new Float32Array(r * c);
    transposeWasm(a, r, c, out);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) expect(out[j * r + i]).toBe(a[i * c + j]);
    expect(() => transposeWasm(a, 6, 40, out)).toThrow(/multiple of 4/);
  });
});
