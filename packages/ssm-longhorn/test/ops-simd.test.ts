import { afterEach, describe, expect, it } from 'vitest';
import { Rng, jsEngine } from '@saelab/core';
import { IGNORE, LonghornLM, TRANSITIONS, causalConvBackward, causalConvForward, crossEntropy, nextTokenTargets, rowNll, setSimdKernels, sigmoid } from '../src/index.js';
import { convSiluBackwardSimd, convSiluForwardSimd, gateBackwardSimd, gateForwardSimd, simdEpoch, simdOpsAvailable, simdScratch } from '../src/ops-simd.js';
import { maxRelErr } from './scan-reference.js';

/**
 * The SIMD kernels of the block's elementwise ops and of the cross-entropy against the TypeScript loops (the
 * references; model.test.ts checks both kernel sets against central finite differences).
 */
const normals = (n: number, seed: number, std = 1) => {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => std * rng.normal());
};

afterEach(() => setSimdKernels(true));

describe('SIMD cross-entropy', () => {
  it('matches the TypeScript loop: loss, count, hits and gradient (ignored rows, wide logits, ties)', () => {
    const V = 36;
    const rows = 9;
    const logits = normals(rows * V, 1, 4);
    for (let v = 0; v < V; v++) logits[2 * V + v] = v % 5 === 0 ? 80 : -80; // saturating logits, tie at v = 0, 5, ...
    logits.fill(0.25, 5 * V, 6 * V); // all equal: argmax is column 0
    const targets = Int32Array.from([3, IGNORE, 5, 7, 0, 4, IGNORE, 35, 1]);
    targets[3] = (() => { let a = 0; for (let v = 1; v < V; v++) if (logits[3 * V + v]! > logits[3 * V + a]!) a = v; return a; })(); // a hit
    setSimdKernels(false);
    const refGrad = logits.slice();
    const ref = crossEntropy(refGrad, targets, V, true);
    setSimdKernels(true);
    expect(simdOpsAvailable(V)).toBe(true);
    const fastGrad = logits.slice();
    const fast = crossEntropy(fastGrad, targets, V, true);
    expect(fast.count).toBe(ref.count);
    expect(fast.correct).toBe(ref.correct);
    expect(ref.correct).toBeGreaterThanOrEqual(1);
    expect(Math.abs(fast.loss - ref.loss)).toBeLessThan(1e-5 * Math.abs(ref.loss));
    expect(maxRelErr(fastGrad, refGrad)).toBeLessThan(1e-5);
    // Without a gradient the logits are left alone.
    const kept = logits.slice();
    expect(crossEntropy(kept, targets, V, false).loss).toBeCloseTo(ref.loss, 5);
    expect(kept).toEqual(logits);
  });

  it('rejects bad targets and non-finite logits', () => {
    const logits = normals(2 * 8, 2);
    expect(() => crossEntropy(logits.slice(), Int32Array.from([1, 8]), 8, true)).toThrow(/target 8 at row 1/);
    expect(() => crossEntropy(logits.slice(), Int32Array.from([-3, 1]), 8, true)).toThrow(/target -3 at row 0/);
    const bad = logits.slice();
    bad[9] = NaN;
    expect(() => crossEntropy(bad, Int32Array.from([1, 2]), 8, true)).toThrow(/non-finite logits at row 1/);
  });
});

describe('SIMD block ops', () => {
  const B = 2;
  const L = 7;
  const d = 12;
  const K = 4;
  const rows = B * L;

  it('conv + SiLU forward and backward match the TypeScript conv and SiLU', () => {
    const xz = normals(rows * 2 * d, 3);
    const w = normals(d * K, 4, 0.5);
    const bias = normals(d, 5, 0.1);
    const ref = causalConvForward(xz, 2 * d, 0, w, bias, B, L);
    const fast = convSiluForwardSimd(xz, 2 * d, w, bias, B, L);
    expect(maxRelErr(fast.xc, ref)).toBeLessThan(1e-6);
    expect(maxRelErr(fast.sig, ref.map(sigmoid))).toBeLessThan(1e-6);
    expect(maxRelErr(fast.xs, ref.map((u) => u * sigmoid(u)))).toBeLessThan(1e-6);

    const gxs = normals(rows * d, 6);
    const gPre = gxs.map((g, o) => { const s = sigmoid(ref[o]!); return g * s * (1 + ref[o]! * (1 - s)); });
    const refGin = new Float32Array(rows * 2 * d);
    const [refGw, refGb] = [new Float32Array(d * K), new Float32Array(d)];
    causalConvBackward(xz, 2 * d, 0, w, gPre, B, L, refGin, refGw, refGb);
    const [gw, gb] = [new Float32Array(d * K).fill(1), new Float32Array(d).fill(1)]; // accumulates
    const gin = convSiluBackwardSimd(xz, 2 * d, w, gxs, fast.xc, fast.sig, B, L, gw, gb);
    const refGinX = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++) refGinX.set(refGin.subarray(r * 2 * d, r * 2 * d + d), r * d);
    expect(maxRelErr(gin, refGinX)).toBeLessThan(1e-5);
    expect(maxRelErr(gw.map((v) => v - 1), refGw)).toBeLessThan(1e-5);
    expect(maxRelErr(gb.map((v) => v - 1), refGb)).toBeLessThan(1e-5);
  });

  it('gate forward and backward match y ⊙ SiLU(z) and its derivative', () => {
    const xz = normals(rows * 2 * d, 7, 2);
    const y0 = normals(rows * d, 8);
    const xs = normals(rows * d, 9);
    const D = normals(d, 10);
    const y = y0.slice();
    const { sigZ, yg } = gateForwardSimd(y, xs, D, xz, rows);
    const z = (o: number) => xz[Math.floor(o / d) * 2 * d + d + (o % d)]!;
    const yRef = y0.map((v, o) => v + D[o % d]! * xs[o]!);
    expect(maxRelErr(y, yRef)).toBeLessThan(1e-6);
    expect(maxRelErr(sigZ, yRef.map((_, o) => sigmoid(z(o))))).toBeLessThan(1e-6);
    expect(maxRelErr(yg, yRef.map((v, o) => v * z(o) * sigmoid(z(o))))).toBeLessThan(1e-6);
    const g = normals(rows * d, 11);
    const { gy, gz } = gateBackwardSimd(g, xz, sigZ, y, rows, d);
    expect(maxRelErr(gy, g.map((v, o) => v * z(o) * sigmoid(z(o))))).toBeLessThan(1e-6);
    const silu1 = (u: number) => { const s = sigmoid(u); return s * (1 + u * (1 - s)); };
    expect(maxRelErr(gz, g.map((v, o) => v * yRef[o]! * silu1(z(o))))).toBeLessThan(1e-5);
  });
});

describe.each(TRANSITIONS)('LM training step (%s): SIMD path = TypeScript path', (variant) => {
  it('same loss, hits and gradients for every parameter', async () => {
    const cfg = { vocabSize: 24, dModel: 8, nLayers: 2, dState: 4, variant, scanChunk: 3 } as const;
    const B = 2;
    const L = 13;
    const rng = new Rng(12);
    const tokens = Int32Array.from({ length: B * L }, () => rng.int(24));
    const targets = nextTokenTargets(tokens, B, L);
    const lm = LonghornLM.create(cfg, 13, jsEngine);
    setSimdKernels(false);
    const ref = await lm.lossAndGrad(tokens, targets, B, L);
    setSimdKernels(true);
    const fast = await lm.lossAndGrad(tokens, targets, B, L);
    expect(Math.abs(fast.loss - ref.loss)).toBeLessThan(1e-5 * ref.loss);
    expect(fast.correct).toBe(ref.correct);
    for (const [name, g] of Object.entries(ref.grads)) {
      expect(maxRelErr(fast.grads[name]!.data, g.data), name).toBeLessThan(2e-4);
    }
  });
});

describe('simdScratch', () => {
  it('grows the module memory for a view larger than it, with headroom that later small kernels use without detaching it', () => {
    const first = simdScratch(16);
    const floats = first.buffer.byteLength / 4 + (1 << 20); // more than the whole memory holds now
    const view = simdScratch(floats);
    expect(view.length).toBe(floats);
    expect(view.buffer.byteLength).toBeGreaterThanOrEqual(4 * floats + 4 * (1 << 18));
    view.fill(1.5);
    expect(view[floats - 1]).toBe(1.5);
    const epoch = simdEpoch();
    crossEntropy(Float32Array.from({ length: 8 * 12 }, (_, i) => i % 7), Int32Array.from({ length: 8 }, (_, i) => i % 12), 12, false);
    expect(simdEpoch()).toBeGreaterThan(epoch); // a kernel ran …
    expect(view.buffer.byteLength).toBeGreaterThan(0); // … and the view is still attached
    expect(view[floats - 1]).toBe(1.5);
  });
});

describe('rowNll', () => {
  it('equals −log softmax[target] computed in float64, for large logits too', () => {
    const rng = new Rng(5);
    const V = 13;
    const rows = 4;
    const logits = Float32Array.from({ length: rows * V }, (_, i) => (rng.normal() * 3 + (i < V ? 80 : 0)));
    for (let r = 0; r < rows; r++) {
      const t = (r * 5) % V;
      const row = Array.from(logits.subarray(r * V, (r + 1) * V), Number);
      const m = Math.max(...row);
      const expected = Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0)) + m - row[t]!;
      expect(rowNll(logits, V, r, t)).toBeCloseTo(expected, 10);
    }
  });
});
