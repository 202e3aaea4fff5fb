import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  Rng,
  SparseRows,
  globalTopK,
  globalTopKCut,
  rowsAbove,
  rowsAboveTs,
  rowsBetween,
  sampledDotsTs,
  sampledDotsWasm,
  scatterOuterTs,
  scatterOuterWasm,
  sparseColumnSums,
  sparseMatmulTs,
  sparseMatmulWasm,
  topKRows,
  transposeInto,
  wasmKernelsAvailable,
  type Tensor,
} from '../src/index.js';
import { KERNELS_WASM_BASE64 } from '../src/fast/kernels-wasm.js';
import { rowsAboveWasm, wasmScanAvailable } from '../src/fast/wasm.js';
import { assembleWat } from '../src/wasm-build.js';
import { maxRelError } from '../src/reference.js';

/** A random [rows, cols] matrix with about `density` of its entries non-zero, as dense data (some rows empty). */
function randomSparse(rng: Rng, rows: number, cols: number, density: number): Tensor {
  const t = { data: new Float32Array(rows * cols), shape: [rows, cols] };
  for (let r = 1; r < rows; r++) for (let j = 0; j < cols; j++) if (rng.uniform() < density) t.data[r * cols + j] = rng.normal();
  return t;
}
const randomDense = (rng: Rng, rows: number, cols: number): Tensor => ({ data: rng.fillNormal(new Float32Array(rows * cols)), shape: [rows, cols] });

// Float64 references, written as the textbook products on the dense matrices.
function matmul64(a: Tensor, b: Tensor, transA = false, transB = false): Float64Array {
  const [ar, ac] = a.shape as [number, number];
  const [br, bc] = b.shape as [number, number];
  const [m, k] = transA ? [ac, ar] : [ar, ac];
  const n = transB ? br : bc;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (transA ? a.data[p * ac + i]! : a.data[i * ac + p]!) * (transB ? b.data[j * bc + p]! : b.data[p * bc + j]!);
      out[i * n + j] = s;
    }
  return out;
}

const impls = [
  ['ts', { matmul: sparseMatmulTs, dots: sampledDotsTs, scatter: scatterOuterTs }],
  ['wasm', { matmul: sparseMatmulWasm, dots: sampledDotsWasm, scatter: scatterOuterWasm }],
] as const;

describe('SparseRows', () => {
  it('fromDense / toDense round-trip, with per-row pointers and increasing columns', () => {
    const t = randomSparse(new Rng(1), 9, 13, 0.3);
    const s = SparseRows.fromDense(t);
    expect(Array.from(s.toDense().data)).toEqual(Array.from(t.data));
    expect(s.rowPtr[1]).toBe(0); // row 0 is empty
    for (let r = 0; r < s.rows; r++) for (let e = s.rowPtr[r]! + 1; e < s.rowPtr[r + 1]!; e++) expect(s.indices[e]).toBeGreaterThan(s.indices[e - 1]!);
  });

  it('reuse: a smaller matrix after a larger one keeps the storage and gives the right contents', () => {
    const rng = new Rng(2);
    const s = SparseRows.fromDense(randomSparse(rng, 20, 16, 0.8));
    const cap = s.indices.length;
    const small = randomSparse(rng, 3, 5, 0.5);
    SparseRows.fromDense(small, s);
    expect(s.indices.length).toBe(cap);
    expect(Array.from(s.toDense().data)).toEqual(Array.from(small.data));
  });

  it('column sums match float64', () => {
    const t = randomSparse(new Rng(3), 11, 7, 0.4);
    const ref = new Float64Array(7);
    t.data.forEach((v, i) => (ref[i % 7] += v));
    expect(maxRelError(sparseColumnSums(SparseRows.fromDense(t)).data, ref)).toBeLessThan(1e-6);
  });
});

describe('sparse kernels match float64 references', () => {
  for (const [name, k] of impls) {
    for (const d of [16, 48])
      describe(`${name}, d = ${d}`, () => {
        it.skipIf(name === 'wasm' && !wasmKernelsAvailable(d))('gather: f·W + b', () => {
          const rng = new Rng(4);
          const f = randomSparse(rng, 10, 12, 0.3);
          const W = randomDense(rng, 12, d);
          const b = randomDense(rng, 1, d);
          const out = new Float32Array(10 * d).fill(Number.NaN); // every entry must be written
          k.matmul(SparseRows.fromDense(f), W, { data: b.data, shape: [d] }, out);
          const ref = matmul64(f, W).map((v, i) => v + b.data[i % d]!);
          expect(maxRelError(out, ref)).toBeLessThan(1e-5);
          k.matmul(SparseRows.fromDense(f), W, null, out);
          expect(maxRelError(out, matmul64(f, W))).toBeLessThan(1e-5);
        });

        it.skipIf(name === 'wasm' && !wasmKernelsAvailable(d))('sampled dots: (G·Wᵀ) at the stored entries', () => {
          const rng = new Rng(5);
          const pattern = SparseRows.fromDense(randomSparse(rng, 10, 12, 0.4));
          const G = randomDense(rng, 10, d);
          const W = randomDense(rng, 12, d);
          const out = new Float32Array(pattern.nnz);
          k.dots(G, W, pattern, out);
          const full = matmul64(G, W, false, true);
          const ref = new Float64Array(pattern.nnz);
          for (let r = 0; r < 10; r++) for (let e = pattern.rowPtr[r]!; e < pattern.rowPtr[r + 1]!; e++) ref[e] = full[r * 12 + pattern.indices[e]!]!;
          expect(maxRelError(out, ref)).toBeLessThan(1e-5);
        });

        it.skipIf(name === 'wasm' && !wasmKernelsAvailable(d))('scatter: acc += Sᵀ·G (accumulates into what is there)', () => {
          const rng = new Rng(6);
          const S = randomSparse(rng, 10, 12, 0.3);
          const G = randomDense(rng, 10, d);
          const acc = randomDense(rng, 12, d);
          const ref = matmul64(S, G, true).map((v, i) => v + acc.data[i]!);
          k.scatter(SparseRows.fromDense(S), G, acc.data);
          expect(maxRelError(acc.data, ref)).toBeLessThan(1e-5);
        });
      });
  }

  it('wasm rejects row lengths its blocking cannot run (the ops then use the TypeScript kernels)', () => {
    expect(wasmKernelsAvailable(6)).toBe(false);
  });

  it('kernels-wasm.ts is the assembly of kernels.wat (run tools/build-wasm.ts after editing the .wat)', async () => {
    const wat = readFileSync(new URL('../src/fast/kernels.wat', import.meta.url), 'utf8');
    expect(Buffer.from(await assembleWat('kernels.wat', wat)).toString('base64')).toBe(KERNELS_WASM_BASE64);
  });
});

describe('nonlinearities producing sparse rows', () => {
  it('topKRows: the k largest per row (ties → lower column), positive ones only, columns increasing', () => {
    const rng = new Rng(7);
    const rows = 30;
    const cols = 17;
    const m = { data: new Float32Array(rows * cols), shape: [rows, cols] };
    // Values on a coarse grid so that ties are common.
    m.data.forEach((_, i, a) => (a[i] = Math.round(rng.normal() * 3) / 2));
    for (const k of [0, 1, 4, 17]) {
      const s = topKRows(m, k);
      for (let r = 0; r < rows; r++) {
        const order = [...Array(cols).keys()].sort((a, b) => m.data[r * cols + b]! - m.data[r * cols + a]! || a - b);
        const want = order.slice(0, k).filter((j) => m.data[r * cols + j]! > 0).sort((a, b) => a - b);
        expect(Array.from(s.indices.subarray(s.rowPtr[r]!, s.rowPtr[r + 1]!))).toEqual(want);
        expect(Array.from(s.values.subarray(s.rowPtr[r]!, s.rowPtr[r + 1]!))).toEqual(want.map((j) => m.data[r * cols + j]!));
      }
    }
    // Restricted to a column subset (AuxK's dead latents).
    const allowed = Int32Array.from([1, 4, 5, 9, 16]);
    for (const positiveOnly of [true, false]) {
      const s = topKRows(m, 2, { columns: allowed, positiveOnly });
      for (let r = 0; r < rows; r++) {
        const order = [...allowed].sort((a, b) => m.data[r * cols + b]! - m.data[r * cols + a]! || a - b);
        const want = order.slice(0, 2).filter((j) => !positiveOnly || m.data[r * cols + j]! > 0).sort((a, b) => a - b);
        expect(Array.from(s.indices.subarray(s.rowPtr[r]!, s.rowPtr[r + 1]!))).toEqual(want);
        expect(Array.from(s.values.subarray(s.rowPtr[r]!, s.rowPtr[r + 1]!))).toEqual(want.map((j) => m.data[r * cols + j]!));
      }
    }
    expect(() => topKRows(m, 18)).toThrow(/k must be an integer in \[0, 17\]/);
  });

  it('rowsAbove: entries strictly above a scalar or per-column threshold', () => {
    const rng = new Rng(8);
    const pre = randomDense(rng, 6, 9);
    const theta = rng.fillNormal(new Float32Array(9));
    for (const t of [0, theta]) {
      const s = rowsAbove(pre, t);
      const want = pre.data.map((v, i) => (v > (typeof t === 'number' ? t : t[i % 9]!) ? v : 0));
      expect(Array.from(s.toDense().data)).toEqual(Array.from(want));
    }
    expect(() => rowsAbove(pre, new Float32Array(3))).toThrow(/3 thresholds for 9 columns/);
  });

  it('globalTopKCut: entries above the cut are the count largest positive entries of the whole matrix (sorting reference)', () => {
    const rng = new Rng(10);
    for (const [rows, cols, count] of [[8, 13, 20], [1, 50, 1], [30, 7, 209], [5, 5, 0]] as const) {
      const m = randomDense(rng, rows, cols);
      const positives = Array.from(m.data).filter((v) => v > 0).sort((a, b) => b - a);
      const cut = globalTopKCut(m, count);
      expect(cut).toBe(positives.length > count ? positives[count] : 0);
      expect(Array.from(m.data).filter((v) => v > cut).length).toBe(Math.min(count, positives.length));
    }
    // Runs of equal values and sorted input (the cases a naive pivot gets wrong or slow).
    const flat: Tensor = { data: new Float32Array(1000).fill(2), shape: [10, 100] };
    expect(globalTopKCut(flat, 10)).toBe(2);
    const sorted: Tensor = { data: Float32Array.from({ length: 5000 }, (_, i) => i + 1), shape: [50, 100] };
    expect(globalTopKCut(sorted, 100)).toBe(4900);
    expect(globalTopKCut({ data: new Float32Array([-1, 0, 3]), shape: [1, 3] }, 2)).toBe(0); // fewer positives than count
    expect(() => globalTopKCut(sorted, -1)).toThrow(/non-negative integer/);
  });

  it('globalTopKCut on large matrices (the sampled-floor fast path) agrees with sorting, including its fallbacks', () => {
    const rng = new Rng(11);
    const big = randomDense(rng, 512, 256); // 131072 entries: the fast path runs for count ≤ ~2000
    const sortedPositives = Array.from(big.data).filter((v) => v > 0).sort((a, b) => b - a);
    for (const count of [0, 1, 100, 1000, 2000, 40000]) expect(globalTopKCut(big, count), `count ${count}`).toBe(sortedPositives[count]);
    // Mostly negative: the sample floor is ≤ 0, so the exact path over the positive entries answers.
    const neg: Tensor = { data: big.data.map((v, i) => (i % 997 === 0 ? Math.abs(v) : -Math.abs(v) - 1e-3)), shape: big.shape };
    const negPositives = Array.from(neg.data).filter((v) => v > 0).sort((a, b) => b - a);
    expect(globalTopKCut(neg, 50)).toBe(negPositives[50]);
    // Large values exactly at the sampled positions: the floor lands high and must still give the exact cut.
    const spiky: Tensor = { data: big.data.map((v, i) => (i % 8 === 0 ? 100 + v : v)), shape: big.shape };
    const spikyPositives = Array.from(spiky.data).filter((v) => v > 0).sort((a, b) => b - a);
    for (const count of [10, 1500]) expect(globalTopKCut(spiky, count)).toBe(spikyPositives[count]);
  });

  it('globalTopK: exactly count entries, the largest positive ones, ties at the cut broken by position', () => {
    const rng = new Rng(12);
    const m = randomDense(rng, 9, 11);
    const want = Array.from(m.data).filter((v) => v > 0).sort((a, b) => b - a).slice(0, 25);
    const got = globalTopK(m, 25);
    expect(got.nnz).toBe(25);
    expect(Array.from(got.values).slice(0, 25).sort((a, b) => b - a)).toEqual(want);
    const flat: Tensor = { data: new Float32Array(40).fill(0.5), shape: [4, 10] };
    const tied = globalTopK(flat, 13);
    expect(tied.nnz).toBe(13);
    expect(Array.from(tied.toDense().data).map((v) => (v ? 1 : 0))).toEqual(Array.from({ length: 40 }, (_, i) => (i < 13 ? 1 : 0)));
    const fewPositive: Tensor = { data: Float32Array.from([-1, 2, 0, 3, -4, 0]), shape: [2, 3] };
    expect(Array.from(globalTopK(fewPositive, 5).toDense().data)).toEqual([0, 2, 0, 3, 0, 0]);
  });

  it('transposeInto matches the definition on a non-square, non-tile-multiple matrix', () => {
    const a = randomDense(new Rng(9), 37, 70);
    const out = new Float32Array(37 * 70);
    transposeInto(a.data, 37, 70, out);
    for (let i = 0; i < 37; i++) for (let j = 0; j < 70; j++) expect(out[j * 37 + i]).toBe(a.data[i * 70 + j]);
  });
});

describe('rowsAboveWasm', () => {
  it.skipIf(!wasmScanAvailable(12))('gives the TypeScript scan\'s entries exactly (ties at the threshold, -0, NaN, -Inf, all/none above, several blocks)', () => {
    const rng = new Rng(21);
    for (const [rows, cols] of [[1, 4], [7, 12], [300, 4096], [2, 1 << 19]] as const) {
      const pre = { data: new Float32Array(rows * cols), shape: [rows, cols] };
      // a coarse grid, so values equal to their threshold are common
      for (let i = 0; i < pre.data.length; i++) pre.data[i] = Math.round(rng.normal() * 4) / 4;
      pre.data[0] = NaN;
      if (pre.data.length > 3) [pre.data[1], pre.data[2], pre.data[3]] = [-0, -Infinity, Infinity];
      const theta = Float32Array.from({ length: cols }, (_, j) => (j % 5 === 0 ? Math.round(rng.normal() * 4) / 4 : j % 5 === 1 ? -Infinity : j % 5 === 2 ? Infinity : 0.5));
      const ref = new SparseRows().reset(rows, cols);
      rowsAboveTs(pre.data, rows, cols, theta, ref);
      const out = new SparseRows().reset(rows, cols);
      rowsAboveWasm(pre.data, rows, cols, theta, out);
      expect(out.nnz).toBe(ref.nnz);
      expect(Array.from(out.rowPtr.subarray(0, rows + 1))).toEqual(Array.from(ref.rowPtr.subarray(0, rows + 1)));
      expect(Buffer.from(out.indices.buffer, 0, 4 * ref.nnz).equals(Buffer.from(ref.indices.buffer, 0, 4 * ref.nnz))).toBe(true);
      expect(Buffer.from(out.values.buffer, 0, 4 * ref.nnz).equals(Buffer.from(ref.values.buffer, 0, 4 * ref.nnz))).toBe(true);
      // the open window lo < v < hi (JumpReLU's), against a plain loop
      const hi = theta.map((t, j) => (j % 3 === 0 ? t + 0.5 : j % 3 === 1 ? t : Infinity));
      const win = new SparseRows().reset(rows, cols);
      rowsAboveWasm(pre.data, rows, cols, theta, win, hi);
      const want: number[] = [];
      const wantPtr = [0];
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < cols; j++) {
          const v = pre.data[r * cols + j]!;
          if (v > theta[j]! && v < hi[j]!) want.push(j);
        }
        wantPtr.push(want.length);
      }
      expect(Array.from(win.rowPtr.subarray(0, rows + 1))).toEqual(wantPtr);
      expect(Array.from(win.indices.subarray(0, win.nnz))).toEqual(want);
      // the dispatching entry points give the same
      expect(Array.from(rowsAbove(pre, theta).indices.subarray(0, ref.nnz))).toEqual(Array.from(ref.indices.subarray(0, ref.nnz)));
      expect(Array.from(rowsBetween(pre, theta, hi).indices.subarray(0, win.nnz))).toEqual(want);
    }
  });

  it('is not offered for rows whose length is not a multiple of 4', () => {
    expect(wasmScanAvailable(6)).toBe(false);
  });
});
