/**
 * Row-sparse matrices (CSR) and the sparse kernels of SAE training.
 *
 * After the nonlinearity only a few latents per row are active (TopK: exactly k; trained JumpReLU/ReLU/Gated:
 * L0 ≈ 20–100 out of thousands), so everything downstream of the encoder GEMM — the decoder, its weight
 * gradient, ∂L/∂f and the encoder-weight gradient — only needs to touch active entries. `SparseRows` holds them
 * row by row; the kernels below are the plain-TypeScript versions (each has a float64 reference in the tests),
 * `wasm.ts` has SIMD versions of the three hot loops.
 */
import { type Tensor, dims2, zeros } from '../tensor.js';
import { transposeWasm, wasmRowKernelsAvailable } from './wasm.js';

/**
 * A [rows, cols] matrix in compressed sparse row form: row r's entries are (indices[e], values[e]) for
 * e in [rowPtr[r], rowPtr[r+1]), columns increasing within a row (every producer here scans columns in order,
 * except top-k, which sorts). Storage is grown by doubling and kept, so a reused matrix stops allocating once
 * it has seen the largest step.
 */
export class SparseRows {
  rowPtr: Int32Array;
  indices: Int32Array;
  values: Float32Array;
  /** Write cursor used by `push` while building. */
  private n = 0;
  private row = 0;

  constructor(
    public rows = 0,
    public cols = 0,
    capacity = 0,
  ) {
    this.rowPtr = new Int32Array(rows + 1);
    this.indices = new Int32Array(capacity);
    this.values = new Float32Array(capacity);
  }

  /** Number of stored entries. */
  get nnz(): number {
    return this.rowPtr[this.rows]!;
  }

  /** Stored entries per row, nnz / rows (= the mean L0 when no stored value is zero). */
  get meanRowNnz(): number {
    return this.rows === 0 ? 0 : this.nnz / this.rows;
  }

  /** Empties the matrix and sets its shape, keeping the storage. */
  reset(rows: number, cols: number): this {
    this.rows = rows;
    this.cols = cols;
    if (this.rowPtr.length < rows + 1) this.rowPtr = new Int32Array(rows + 1);
    else this.rowPtr.fill(0, 0, rows + 1);
    this.n = 0;
    this.row = 0;
    return this;
  }

  /** Makes room for `extra` more entries beyond the write cursor (call once per row with extra = cols). */
  reserve(extra: number): void {
    const need = this.n + extra;
    if (need <= this.indices.length) return;
    const cap = Math.max(need, 2 * this.indices.length, 1024);
    const idx = new Int32Array(cap);
    idx.set(this.indices.subarray(0, this.n));
    const val = new Float32Array(cap);
    val.set(this.values.subarray(0, this.n));
    this.indices = idx;
    this.values = val;
  }

  /** Appends entry (col, value) to the current row (room must have been reserved). */
  push(col: number, value: number): void {
    this.indices[this.n] = col;
    this.values[this.n++] = value;
  }

  /** Closes the current row. */
  endRow(): void {
    this.rowPtr[++this.row] = this.n;
  }

  /** The write cursor (for hot loops that fill `indices`/`values` directly after `reserve`, then call endRowAt). */
  get cursor(): number {
    return this.n;
  }

  /** Closes the current row after entries were written directly up to position `n`. */
  endRowAt(n: number): void {
    this.n = n;
    this.rowPtr[++this.row] = n;
  }

  /** A matrix with the same pattern (shared rowPtr/indices) and its own values (zeros unless given). */
  withValues(values?: Float32Array): SparseRows {
    const s = new SparseRows();
    s.rows = this.rows;
    s.cols = this.cols;
    s.rowPtr = this.rowPtr;
    s.indices = this.indices;
    s.values = values ?? new Float32Array(this.nnz);
    if (s.values.length < this.nnz) throw new Error(`withValues: need ${this.nnz} values, got ${s.values.length}`);
    s.n = this.nnz;
    s.row = this.rows;
    return s;
  }

  /** Number of stored values that are non-zero. */
  countNonzero(): number {
    let c = 0;
    const v = this.values;
    for (let e = 0, n = this.nnz; e < n; e++) if (v[e] !== 0) c++;
    return c;
  }

  /** Writes the dense [rows, cols] matrix into `out` (allocated when absent). */
  toDense(out?: Float32Array): Tensor {
    const size = this.rows * this.cols;
    const data = out ? out.subarray(0, size) : new Float32Array(size);
    if (out) data.fill(0);
    const { rowPtr, indices, values, cols } = this;
    for (let r = 0; r < this.rows; r++) {
      const o = r * cols;
      for (let e = rowPtr[r]!, end = rowPtr[r + 1]!; e < end; e++) data[o + indices[e]!] = values[e]!;
    }
    return { data, shape: [this.rows, cols] };
  }

  /** The non-zero entries of a dense matrix. */
  static fromDense(t: Tensor, out = new SparseRows()): SparseRows {
    const [rows, cols] = dims2(t, 'SparseRows.fromDense');
    out.reset(rows, cols);
    const a = t.data;
    for (let r = 0; r < rows; r++) {
      out.reserve(cols);
      const o = r * cols;
      for (let j = 0; j < cols; j++) if (a[o + j] !== 0) out.push(j, a[o + j]!);
      out.endRow();
    }
    return out;
  }
}

function checkOperands(s: SparseRows, rowsOf: number, what: string): void {
  if (s.rows !== rowsOf) throw new Error(`${what}: sparse matrix has ${s.rows} rows but the dense operand has ${rowsOf}`);
}

/** out[r, :] = bias + Σ_e values[e] · W[indices[e], :]  — x̂ = f·W_dec + b_dec with f sparse (gather). */
export function sparseMatmulTs(s: SparseRows, W: Tensor, bias: Tensor | null, out: Float32Array): void {
  const [m, d] = dims2(W, 'sparseMatmul W');
  if (s.cols !== m) throw new Error(`sparseMatmul: sparse matrix has ${s.cols} columns but W has ${m} rows`);
  const { rowPtr, indices, values } = s;
  const w = W.data;
  for (let r = 0; r < s.rows; r++) {
    const o = r * d;
    if (bias) out.set(bias.data, o);
    else out.fill(0, o, o + d);
    for (let e = rowPtr[r]!, end = rowPtr[r + 1]!; e < end; e++) {
      const v = values[e]!;
      const wo = indices[e]! * d;
      for (let j = 0; j < d; j++) out[o + j] += v * w[wo + j]!;
    }
  }
}

/** out[e] = G[r, :] · W[indices[e], :] for every stored (r, e)  — ∂L/∂f = dX̂·W_decᵀ at the active entries only. */
export function sampledDotsTs(G: Tensor, W: Tensor, pattern: SparseRows, out: Float32Array): void {
  const [rows, d] = dims2(G, 'sampledDots G');
  const [, d2] = dims2(W, 'sampledDots W');
  if (d !== d2) throw new Error(`sampledDots: G has ${d} columns but W has ${d2}`);
  checkOperands(pattern, rows, 'sampledDots');
  const { rowPtr, indices } = pattern;
  const g = G.data;
  const w = W.data;
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    for (let e = rowPtr[r]!, end = rowPtr[r + 1]!; e < end; e++) {
      const wo = indices[e]! * d;
      let s = 0;
      for (let j = 0; j < d; j++) s += g[o + j]! * w[wo + j]!;
      out[e] = s;
    }
  }
}

/** acc[indices[e], :] += values[e] · G[r, :]  — Sᵀ·G by scatter-add, e.g. dW_dec = fᵀ·dX̂ (acc is [cols, d]). */
export function scatterOuterTs(s: SparseRows, G: Tensor, acc: Float32Array): void {
  const [rows, d] = dims2(G, 'scatterOuter G');
  checkOperands(s, rows, 'scatterOuter');
  if (acc.length < s.cols * d) throw new Error(`scatterOuter: accumulator needs ${s.cols * d} entries, has ${acc.length}`);
  const { rowPtr, indices, values } = s;
  const g = G.data;
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    for (let e = rowPtr[r]!, end = rowPtr[r + 1]!; e < end; e++) {
      const v = values[e]!;
      if (v === 0) continue;
      const ao = indices[e]! * d;
      for (let j = 0; j < d; j++) acc[ao + j] += v * g[o + j]!;
    }
  }
}

/** Column sums of a sparse matrix (float64 accumulation), e.g. db_enc = Σ_rows dPre. */
export function sparseColumnSums(s: SparseRows, out = zeros([s.cols])): Tensor {
  const acc = new Float64Array(s.cols);
  const { indices, values } = s;
  for (let e = 0, n = s.nnz; e < n; e++) acc[indices[e]!] += values[e]!;
  for (let j = 0; j < s.cols; j++) out.data[j] = acc[j]!;
  return out;
}

/** out = aᵀ for a row-major [r, c] matrix: the SIMD kernel when r, c are multiples of 4, else 32×32 tiles. */
export function transposeInto(a: Float32Array, r: number, c: number, out: Float32Array): void {
  if (r % 4 === 0 && c % 4 === 0 && wasmRowKernelsAvailable()) return transposeWasm(a, r, c, out);
  const T = 32;
  for (let i0 = 0; i0 < r; i0 += T)
    for (let j0 = 0; j0 < c; j0 += T) {
      const i1 = Math.min(i0 + T, r);
      const j1 = Math.min(j0 + T, c);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[j * r + i] = a[i * c + j]!;
    }
}
