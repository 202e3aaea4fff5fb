/**
 * Selection of the active latents from dense pre-activations, producing CSR rows (`csr.ts`): per-row top-k
 * (TopK, AuxK's dead latents), thresholding (ReLU, JumpReLU and the BatchTopK inference threshold) and the
 * batch-level top-(k·B) (BatchTopK). Each has a float64 or brute-force reference in the tests.
 */
import { type Tensor, dims2 } from '../tensor.js';
import { SparseRows } from './csr.js';
import { rowsAboveWasm, wasmScanAvailable } from './wasm.js';

/**
 * Top-k per row as a sparse matrix: the k largest entries of each row of `m` (ties → lower column), columns in
 * increasing order. By default only those > 0 are kept, i.e. ReLU(TopK(·)) (Gao et al. eq. 3); `positiveOnly:
 * false` keeps all k values. With `columns`, only those columns compete (AuxK's dead latents).
 */
export function topKRows(
  m: Tensor,
  k: number,
  opts: { out?: SparseRows; columns?: Int32Array; positiveOnly?: boolean } = {},
): SparseRows {
  const [rows, cols] = dims2(m, 'topKRows');
  const out = opts.out ?? new SparseRows();
  const cand = opts.columns ?? null;
  const positiveOnly = opts.positiveOnly ?? true;
  const nc = cand ? cand.length : cols;
  if (!Number.isInteger(k) || k < 0 || k > nc) throw new Error(`topKRows: k must be an integer in [0, ${nc}], got ${k}`);
  out.reset(rows, cols);
  const heapV = new Float32Array(k);
  const heapI = new Int32Array(k);
  const a = m.data;
  const sel = new Int32Array(k);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    // Min-heap of the best k so far; root = the worst kept (smallest value, larger column on ties). Columns are
    // scanned in increasing order, so a later column never wins a tie: only v > root can enter once the heap is full.
    let size = 0;
    let root = -Infinity;
    for (let c = 0; c < nc; c++) {
      const j = cand ? cand[c]! : c;
      const v = a[o + j]!;
      if (size === k && !(v > root)) continue;
      if (size < k) {
        let p = size++;
        while (p > 0) {
          const q = (p - 1) >> 1;
          if (!(v < heapV[q]! || (v === heapV[q]! && j > heapI[q]!))) break;
          heapV[p] = heapV[q]!;
          heapI[p] = heapI[q]!;
          p = q;
        }
        heapV[p] = v;
        heapI[p] = j;
      } else {
        let p = 0;
        for (;;) {
          const l = 2 * p + 1;
          if (l >= k) break;
          const rr = l + 1;
          const w = rr < k && (heapV[rr]! < heapV[l]! || (heapV[rr] === heapV[l] && heapI[rr]! > heapI[l]!)) ? rr : l;
          if (!(heapV[w]! < v || (heapV[w] === v && heapI[w]! > j))) break;
          heapV[p] = heapV[w]!;
          heapI[p] = heapI[w]!;
          p = w;
        }
        heapV[p] = v;
        heapI[p] = j;
      }
      root = heapV[0]!;
    }
    // Keep the positive ones (or all), in column order.
    let n = 0;
    for (let s = 0; s < size; s++) if (!positiveOnly || heapV[s]! > 0) sel[n++] = heapI[s]!;
    const chosen = sel.subarray(0, n).sort();
    out.reserve(n);
    for (let s = 0; s < n; s++) out.push(chosen[s]!, a[o + chosen[s]!]!);
    out.endRow();
  }
  return out;
}

/**
 * The entries of `pre` above a per-column threshold (or one scalar), as a sparse matrix with values pre:
 * ReLU is θ = 0, JumpReLU is θ = the learned thresholds (Rajamanoharan et al. 2024b, eq. 4).
 */
export function rowsAbove(pre: Tensor, threshold: Float32Array | number, out = new SparseRows()): SparseRows {
  const [rows, cols] = dims2(pre, 'rowsAbove');
  const theta = typeof threshold === 'number' ? new Float32Array(cols).fill(threshold) : threshold;
  if (theta.length !== cols) throw new Error(`rowsAbove: ${theta.length} thresholds for ${cols} columns`);
  out.reset(rows, cols);
  if (wasmScanAvailable(cols)) rowsAboveWasm(pre.data, rows, cols, theta, out);
  else rowsAboveTs(pre.data, rows, cols, theta, out);
  return out;
}

/**
 * The entries strictly inside (lo[j], hi[j]) as a sparse matrix, columns increasing — e.g. JumpReLU's
 * straight-through window θ − ε/2 < pre < θ + ε/2. Stored values are the pre-activations.
 */
export function rowsBetween(pre: Tensor, lo: Float32Array, hi: Float32Array, out = new SparseRows()): SparseRows {
  const [rows, cols] = dims2(pre, 'rowsBetween');
  if (lo.length !== cols || hi.length !== cols) throw new Error(`rowsBetween: ${lo.length}/${hi.length} bounds for ${cols} columns`);
  out.reset(rows, cols);
  if (wasmScanAvailable(cols)) rowsAboveWasm(pre.data, rows, cols, lo, out, hi);
  else rowsAboveTs(pre.data, rows, cols, lo, out, hi);
  return out;
}

/** The scans of rowsAbove / rowsBetween in TypeScript (the WebAssembly kernel's reference); `out` already reset. */
export function rowsAboveTs(a: Float32Array, rows: number, cols: number, lo: Float32Array, out: SparseRows, hi?: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    out.reserve(cols);
    const idx = out.indices;
    const val = out.values;
    let n = out.cursor;
    for (let j = 0, o = r * cols; j < cols; j++, o++) {
      const v = a[o]!;
      if (v > lo[j]! && (!hi || v < hi[j]!)) {
        idx[n] = j;
        val[n++] = v;
      }
    }
    out.endRowAt(n);
  }
}

/**
 * The cut for a top-`count` over a whole matrix (BatchTopK, Bussmann et al. 2024): a value t such that the
 * positive entries of `m` greater than t are its `count` largest positive entries (barring ties) — the
 * (count+1)-th largest positive entry, or 0 when there are at most `count` positive entries. Quickselect over
 * a copy of the positive entries (O(n) expected), in `scratch` when it is large enough.
 */
export function globalTopKCut(m: Tensor, count: number, scratch?: Float32Array): number {
  if (!Number.isInteger(count) || count < 0) throw new Error(`globalTopKCut: count must be a non-negative integer, got ${count}`);
  const a = m.data;
  const buf = scratch && scratch.length >= a.length ? scratch : new Float32Array(a.length);
  // Fast path when count+1 is a small share of the entries (BatchTopK: k/d_sae ≲ 1%): a strided sample gives a
  // floor t0 a little below the cut; the entries ≥ t0 hold the count+1 largest, so selecting among them suffices.
  const need = count + 1;
  if (a.length >= 64 * need && a.length >= 1 << 16) {
    const samples = 1 << 14;
    const stride = Math.floor(a.length / samples);
    for (let i = 0; i < samples; i++) buf[i] = a[i * stride]!;
    const rankFromTop = Math.ceil((4 * need * samples) / a.length); // aim for ~4× the needed entries above t0
    const t0 = selectAscending(buf, samples, samples - rankFromTop);
    if (t0 > 0) {
      let n = 0;
      for (let i = 0; i < a.length; i++) if (a[i]! >= t0) buf[n++] = a[i]!;
      if (n >= need) return selectAscending(buf, n, n - need);
    }
  }
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i]! > 0) buf[n++] = a[i]!;
  if (n <= count) return 0;
  return selectAscending(buf, n, n - count - 1);
}

/** The element of rank `k` (0-based, ascending) among v[0..n), by iterative quickselect; reorders v. */
function selectAscending(v: Float32Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  while (hi > lo) {
    // Median of three as the pivot keeps sorted or constant runs from going quadratic.
    const mid = (lo + hi) >> 1;
    const pivot = median3(v[lo]!, v[mid]!, v[hi]!);
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (v[i]! < pivot) i++;
      while (v[j]! > pivot) j--;
      if (i <= j) {
        const t = v[i]!;
        v[i++] = v[j]!;
        v[j--] = t;
      }
    }
    // Now v[lo..j] ≤ pivot ≤ v[i..hi], and entries strictly between j and i equal the pivot.
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return pivot;
  }
  return v[k]!;
}

const median3 = (a: number, b: number, c: number) => Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));

/**
 * The `count` largest positive entries of the whole matrix as CSR rows (BatchTopK's selection), exactly `count` of
 * them when there are that many positive entries: entries above `globalTopKCut`, then entries equal to the cut in
 * row-major order until `count` are kept (ties broken by position, as a sort-based top-k would).
 */
export function globalTopK(m: Tensor, count: number, opts: { out?: SparseRows; scratch?: Float32Array } = {}): SparseRows {
  const [rows, cols] = dims2(m, 'globalTopK');
  const cut = globalTopKCut(m, count, opts.scratch);
  const a = m.data;
  let above = 0;
  for (let i = 0; i < a.length; i++) if (a[i]! > cut) above++;
  let ties = cut > 0 ? count - above : 0;
  const out = (opts.out ?? new SparseRows()).reset(rows, cols);
  for (let r = 0; r < rows; r++) {
    out.reserve(cols);
    for (let j = 0, o = r * cols; j < cols; j++, o++) {
      const v = a[o]!;
      if (v > cut || (v === cut && ties > 0 && ties--)) out.push(j, v);
    }
    out.endRow();
  }
  return out;
}
