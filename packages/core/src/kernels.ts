/**
 * Elementwise ops, bias broadcasts, reductions and top-k on row-major float32 matrices.
 * Each has a float64 reference in `reference.ts` that the tests compare against.
 * Functions named `...InPlace` mutate their first argument; the rest allocate their result.
 */
import { type Tensor, dims2, zeros } from './tensor.js';

function checkVector(v: Tensor, n: number, name: string): void {
  if (v.data.length !== n) throw new Error(`${name}: expected a vector of length ${n} but got shape [${v.shape.join(', ')}]`);
}

/** m[i, :] += v (v has length cols). */
export function addRowVectorInPlace(m: Tensor, v: Tensor): Tensor {
  const [rows, cols] = dims2(m, 'addRowVector');
  checkVector(v, cols, 'addRowVector bias');
  const a = m.data;
  const b = v.data;
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let j = 0; j < cols; j++) a[o + j] += b[j]!;
  }
  return m;
}

/** Returns m[i, :] − v. */
export function subRowVector(m: Tensor, v: Tensor): Tensor {
  const [rows, cols] = dims2(m, 'subRowVector');
  checkVector(v, cols, 'subRowVector bias');
  const out = zeros([rows, cols]);
  const a = m.data;
  const b = v.data;
  const o = out.data;
  for (let i = 0; i < rows; i++) {
    const r = i * cols;
    for (let j = 0; j < cols; j++) o[r + j] = a[r + j]! - b[j]!;
  }
  return out;
}

/** Column sums of an [rows, cols] matrix (float64 accumulation), optionally scaled. */
export function columnSums(m: Tensor, scale = 1): Tensor {
  const [rows, cols] = dims2(m, 'columnSums');
  const acc = new Float64Array(cols);
  const a = m.data;
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let j = 0; j < cols; j++) acc[j] += a[o + j]!;
  }
  const out = zeros([cols]);
  for (let j = 0; j < cols; j++) out.data[j] = acc[j]! * scale;
  return out;
}

/** a − b, elementwise (same shapes). */
export function sub(a: Tensor, b: Tensor): Tensor {
  if (a.data.length !== b.data.length) throw new Error(`sub: shapes [${a.shape}] and [${b.shape}] differ`);
  const out = zeros(a.shape);
  for (let i = 0; i < a.data.length; i++) out.data[i] = a.data[i]! - b.data[i]!;
  return out;
}

/** Σ (a − b)², accumulated in float64. */
export function sumSquaredDiff(a: Tensor, b: Tensor): number {
  if (a.data.length !== b.data.length) throw new Error(`sumSquaredDiff: shapes [${a.shape}] and [${b.shape}] differ`);
  let s = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = a.data[i]! - b.data[i]!;
    s += d * d;
  }
  return s;
}

/** Returns max(x, 0). */
export function relu(x: Tensor): Tensor {
  const out = zeros(x.shape);
  for (let i = 0; i < x.data.length; i++) out.data[i] = x.data[i]! > 0 ? x.data[i]! : 0;
  return out;
}

/** Number of non-zero entries of an [rows, cols] matrix, divided by rows (mean L0). */
export function meanRowNonzeros(f: Tensor): number {
  const [rows] = dims2(f, 'meanRowNonzeros');
  let nz = 0;
  for (let i = 0; i < f.data.length; i++) if (f.data[i] !== 0) nz++;
  return rows === 0 ? 0 : nz / rows;
}

/**
 * Indices of the k largest entries of each row (ties broken by lower index), [rows, k] row-major,
 * each row's indices in descending order of value. O(cols · log k) per row with a small min-heap.
 */
export function topKIndices(m: Tensor, k: number): Int32Array {
  const [rows, cols] = dims2(m, 'topKIndices');
  if (!Number.isInteger(k) || k < 0 || k > cols) throw new Error(`topKIndices: k must be an integer in [0, ${cols}], got ${k}`);
  const out = new Int32Array(rows * k);
  const heapIdx = new Int32Array(k);
  const heapVal = new Float32Array(k);
  const a = m.data;
  // "worse" = smaller value, or equal value with larger index (so lower indices win ties).
  const worse = (va: number, ia: number, vb: number, ib: number) => va < vb || (va === vb && ia > ib);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let size = 0;
    for (let j = 0; j < cols; j++) {
      const v = a[o + j]!;
      if (size < k) {
        // sift up
        let c = size++;
        while (c > 0) {
          const p = (c - 1) >> 1;
          if (!worse(v, j, heapVal[p]!, heapIdx[p]!)) break;
          heapVal[c] = heapVal[p]!;
          heapIdx[c] = heapIdx[p]!;
          c = p;
        }
        heapVal[c] = v;
        heapIdx[c] = j;
      } else if (k > 0 && worse(heapVal[0]!, heapIdx[0]!, v, j)) {
        // replace root, sift down
        let c = 0;
        for (;;) {
          const l = 2 * c + 1;
          if (l >= k) break;
          const rr = l + 1;
          const w = rr < k && worse(heapVal[rr]!, heapIdx[rr]!, heapVal[l]!, heapIdx[l]!) ? rr : l;
          if (!worse(heapVal[w]!, heapIdx[w]!, v, j)) break;
          heapVal[c] = heapVal[w]!;
          heapIdx[c] = heapIdx[w]!;
          c = w;
        }
        heapVal[c] = v;
        heapIdx[c] = j;
      }
    }
    // pop the heap into descending order
    const base = r * k;
    for (let n = size; n > 0; n--) {
      out[base + n - 1] = heapIdx[0]!;
      const lastV = heapVal[n - 1]!;
      const lastI = heapIdx[n - 1]!;
      let c = 0;
      const len = n - 1;
      for (;;) {
        const l = 2 * c + 1;
        if (l >= len) break;
        const rr = l + 1;
        const w = rr < len && worse(heapVal[rr]!, heapIdx[rr]!, heapVal[l]!, heapIdx[l]!) ? rr : l;
        if (!worse(heapVal[w]!, heapIdx[w]!, lastV, lastI)) break;
        heapVal[c] = heapVal[w]!;
        heapIdx[c] = heapIdx[w]!;
        c = w;
      }
      heapVal[c] = lastV;
      heapIdx[c] = lastI;
    }
  }
  return out;
}
