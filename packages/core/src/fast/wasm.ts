/**
 * WebAssembly SIMD versions of the three hot sparse loops (kernels.wat), with the same contracts as the TypeScript
 * versions in csr.ts. Each call copies its operands into the module's memory, runs, and copies the result out:
 * a few MiB of memcpy against tens of millions of multiply-adds, and no aliasing between JS and WASM views.
 * V8 does not vectorise TypeScript loops, so f32x4 gives ~3–4× on the same core.
 */
import type { Tensor } from '../tensor.js';
import { dims2 } from '../tensor.js';
import { type WasmMemory, WasmArena as Arena, instantiateWasm } from '../wasm.js';
import { KERNELS_WASM_BASE64 } from './kernels-wasm.js';
import type { SparseRows } from './csr.js';

interface KernelExports {
  memory: WasmMemory;
  gather_axpy(rows: number, d: number, ptr: number, idx: number, val: number, w: number, bias: number, out: number): void;
  scatter_outer(rows: number, d: number, ptr: number, idx: number, val: number, g: number, acc: number): void;
  sampled_dots(rows: number, d: number, ptr: number, idx: number, g: number, w: number, out: number): void;
  adam_update(
    n: number, w: number, g: number, m: number, v: number,
    b1: number, c1: number, b2: number, c2: number, stepSize: number, bc2Sqrt: number, eps: number, shrink: number,
  ): void;
  rows_above(rows: number, cols: number, pre: number, theta: number, ptr: number, idx: number, val: number): number;
  rows_between(rows: number, cols: number, pre: number, lo: number, hi: number, ptr: number, idx: number, val: number): number;
  project_rows(m: number, d: number, w: number, g: number): void;
  normalize_rows(m: number, d: number, w: number, target: number, norms: number): void;
  transpose(r: number, c: number, a: number, out: number): void;
}

let instance: KernelExports | null | undefined;

/** The kernels, or null where WebAssembly SIMD is unavailable. */
function kernels(): KernelExports | null {
  if (instance === undefined) instance = instantiateWasm<KernelExports>(KERNELS_WASM_BASE64);
  return instance;
}

/** Whether the SIMD kernels can run rows of length d (WASM SIMD present, d a multiple of 16). */
export function wasmKernelsAvailable(d: number): boolean {
  return d % 16 === 0 && kernels() !== null;
}

function need(): KernelExports {
  const k = kernels();
  if (!k) throw new Error('WebAssembly SIMD kernels are unavailable in this runtime');
  return k;
}

/** Copies the CSR arrays in; returns their offsets. */
function putCsr(a: Arena, s: SparseRows, withValues: boolean): { ptr: number; idx: number; val: number } {
  const nnz = s.nnz;
  const ptr = a.alloc(4 * (s.rows + 1));
  const idx = a.alloc(4 * nnz);
  const val = withValues ? a.alloc(4 * nnz) : 0;
  a.commit();
  a.i32(ptr, s.rows + 1).set(s.rowPtr.subarray(0, s.rows + 1));
  a.i32(idx, nnz).set(s.indices.subarray(0, nnz));
  if (withValues) a.f32(val, nnz).set(s.values.subarray(0, nnz));
  return { ptr, idx, val };
}

/** out[r, :] = bias + Σ_e values[e] · W[indices[e], :]. */
export function sparseMatmulWasm(s: SparseRows, W: Tensor, bias: Tensor | null, out: Float32Array): void {
  const k = need();
  const [m, d] = dims2(W, 'sparseMatmul W');
  if (s.cols !== m) throw new Error(`sparseMatmul: sparse matrix has ${s.cols} columns but W has ${m} rows`);
  const a = new Arena(k);
  const csr = putCsr(a, s, true);
  const w = a.alloc(4 * m * d);
  const b = bias ? a.alloc(4 * d) : 0;
  const o = a.alloc(4 * s.rows * d);
  a.commit();
  a.f32(w, m * d).set(W.data);
  if (bias) a.f32(b, d).set(bias.data);
  k.gather_axpy(s.rows, d, csr.ptr, csr.idx, csr.val, w, b, o);
  out.set(a.f32(o, s.rows * d));
}

/** out[e] = G[r, :] · W[indices[e], :]. */
export function sampledDotsWasm(G: Tensor, W: Tensor, pattern: SparseRows, out: Float32Array): void {
  const k = need();
  const [rows, d] = dims2(G, 'sampledDots G');
  const [m, d2] = dims2(W, 'sampledDots W');
  if (d !== d2) throw new Error(`sampledDots: G has ${d} columns but W has ${d2}`);
  if (pattern.rows !== rows) throw new Error(`sampledDots: sparse matrix has ${pattern.rows} rows but G has ${rows}`);
  const a = new Arena(k);
  const csr = putCsr(a, pattern, false);
  const g = a.alloc(4 * rows * d);
  const w = a.alloc(4 * m * d);
  const o = a.alloc(4 * pattern.nnz);
  a.commit();
  a.f32(g, rows * d).set(G.data);
  a.f32(w, m * d).set(W.data);
  k.sampled_dots(rows, d, csr.ptr, csr.idx, g, w, o);
  out.set(a.f32(o, pattern.nnz));
}

/** acc[indices[e], :] += values[e] · G[r, :] (acc is [cols, d]). */
export function scatterOuterWasm(s: SparseRows, G: Tensor, acc: Float32Array): void {
  const k = need();
  const [rows, d] = dims2(G, 'scatterOuter G');
  if (s.rows !== rows) throw new Error(`scatterOuter: sparse matrix has ${s.rows} rows but G has ${rows}`);
  const n = s.cols * d;
  if (acc.length < n) throw new Error(`scatterOuter: accumulator needs ${n} entries, has ${acc.length}`);
  const a = new Arena(k);
  const csr = putCsr(a, s, true);
  const g = a.alloc(4 * rows * d);
  const o = a.alloc(4 * n);
  a.commit();
  a.f32(g, rows * d).set(G.data);
  a.f32(o, n).set(acc.subarray(0, n));
  k.scatter_outer(rows, d, csr.ptr, csr.idx, csr.val, g, o);
  acc.set(a.f32(o, n));
}

/** The scalars of one Adam/AdamW step, computed once per step by the caller (optim.ts). */
export interface AdamScalars {
  beta1: number;
  beta2: number;
  stepSize: number;
  bc2Sqrt: number;
  eps: number;
  shrink: number;
}

/** Elements per staged chunk: 4 arrays × 16 Ki floats = 256 KiB, so a chunk stays in L2 between copy-in and copy-out. */
const ADAM_CHUNK = 1 << 14;

/** Whether the WebAssembly Adam step can run (WebAssembly SIMD present). */
export function wasmAdamAvailable(): boolean {
  return kernels() !== null;
}

/**
 * One Adam/AdamW update of w, m, v in place (kernels.wat `adam_update`), bit-identical to optim.ts's TypeScript loop.
 * The four arrays are staged through the module's memory a chunk at a time (copy in, update, copy w, m, v out), so
 * the module never holds a whole parameter and the arrays stay owned by the caller.
 */
export function adamUpdateWasm(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, s: AdamScalars): void {
  const k = need();
  const n = w.length;
  if (g.length !== n || m.length !== n || v.length !== n) throw new Error(`adamUpdateWasm: lengths ${n}, ${g.length}, ${m.length}, ${v.length} differ`);
  const a = new Arena(k);
  const chunk = Math.min(ADAM_CHUNK, n);
  const [wo, go, mo, vo] = [a.allocFloats(chunk), a.allocFloats(chunk), a.allocFloats(chunk), a.allocFloats(chunk)];
  a.commit();
  const [W, G, M, V] = [a.f32(wo, chunk), a.f32(go, chunk), a.f32(mo, chunk), a.f32(vo, chunk)];
  const c1 = 1 - s.beta1;
  const c2 = 1 - s.beta2;
  for (let start = 0; start < n; start += chunk) {
    const len = Math.min(chunk, n - start);
    const end = start + len;
    W.set(w.subarray(start, end));
    G.set(g.subarray(start, end));
    M.set(m.subarray(start, end));
    V.set(v.subarray(start, end));
    k.adam_update(len, wo, go, mo, vo, s.beta1, c1, s.beta2, c2, s.stepSize, s.bc2Sqrt, s.eps, s.shrink);
    w.set(W.subarray(0, len), start);
    m.set(M.subarray(0, len), start);
    v.set(V.subarray(0, len), start);
  }
}

/** Rows per staged block of rowsAboveWasm: the block's pre-activations and its worst-case CSR stay a few MiB. */
const SCAN_BLOCK_FLOATS = 1 << 20;

/** Whether rowsAboveWasm can scan rows of `cols` columns (WebAssembly SIMD present, cols a multiple of 4). */
export function wasmScanAvailable(cols: number): boolean {
  return cols % 4 === 0 && kernels() !== null;
}

/**
 * Appends to `out` (already reset to [rows, cols]) the entries of pre [rows, cols] above lo[j] — and below hi[j] when
 * `hi` is given — (kernels.wat `rows_above` / `rows_between`): the same entries in the same order as the TypeScript
 * scans. Rows are staged through the module's memory in blocks of about 4 MiB; each block's CSR is copied into `out`
 * behind the previous ones.
 */
export function rowsAboveWasm(pre: Float32Array, rows: number, cols: number, lo: Float32Array, out: SparseRows, hi?: Float32Array): void {
  const k = need();
  if (lo.length !== cols || (hi && hi.length !== cols)) throw new Error(`rowsAboveWasm: ${lo.length}${hi ? `/${hi.length}` : ''} thresholds for ${cols} columns`);
  const blockRows = Math.max(1, Math.min(rows, Math.floor(SCAN_BLOCK_FLOATS / cols)));
  const a = new Arena(k);
  const preOff = a.allocFloats(blockRows * cols);
  const loOff = a.allocFloats(cols);
  const hiOff = hi ? a.allocFloats(cols) : 0;
  const ptrOff = a.allocFloats(blockRows + 1);
  const idxOff = a.allocFloats(blockRows * cols + 4); // + 4: the kernel writes lanes before it knows they are kept
  const valOff = a.allocFloats(blockRows * cols + 4);
  a.commit();
  a.f32(loOff, cols).set(lo);
  if (hi) a.f32(hiOff, cols).set(hi);
  const preView = a.f32(preOff, blockRows * cols);
  const ptr = a.i32(ptrOff, blockRows + 1);
  for (let r0 = 0; r0 < rows; r0 += blockRows) {
    const nRows = Math.min(blockRows, rows - r0);
    preView.set(pre.subarray(r0 * cols, (r0 + nRows) * cols));
    const n = hi
      ? k.rows_between(nRows, cols, preOff, loOff, hiOff, ptrOff, idxOff, valOff)
      : k.rows_above(nRows, cols, preOff, loOff, ptrOff, idxOff, valOff);
    out.reserve(n);
    const base = out.cursor;
    out.indices.set(a.i32(idxOff, n), base);
    out.values.set(a.f32(valOff, n), base);
    for (let i = 1; i <= nRows; i++) out.endRowAt(base + ptr[i]!);
  }
}

/** Whether the row kernels below (projection, normalisation, transpose) can run: WebAssembly SIMD is present. */
export function wasmRowKernelsAvailable(): boolean {
  return kernels() !== null;
}

/**
 * g_i ← g_i − (g_i·w_i / ‖w_i‖²) w_i for each row of the [m, d] matrices w, g (kernels.wat `project_rows`),
 * bit-identical to decoder-norm.ts's TypeScript loop.
 */
export function projectRowsWasm(w: Float32Array, g: Float32Array, m: number, d: number): void {
  const k = need();
  const a = new Arena(k);
  const [wo, go] = [a.allocFloats(m * d), a.allocFloats(m * d)];
  a.commit();
  a.f32(wo, m * d).set(w.subarray(0, m * d));
  a.f32(go, m * d).set(g.subarray(0, m * d));
  k.project_rows(m, d, wo, go);
  g.set(a.f32(go, m * d));
}

/**
 * Rescales each row of the [m, d] matrix w to norm `target` (rows of norm 0 unchanged) and returns the norms before
 * (kernels.wat `normalize_rows`), bit-identical to decoder-norm.ts's TypeScript loop.
 */
export function normalizeRowsWasm(w: Float32Array, m: number, d: number, target: number): Float64Array {
  const k = need();
  const a = new Arena(k);
  const [wo, no] = [a.allocFloats(m * d), a.alloc(8 * m)];
  a.commit();
  a.f32(wo, m * d).set(w.subarray(0, m * d));
  k.normalize_rows(m, d, wo, target, no);
  w.set(a.f32(wo, m * d));
  return new Float64Array(k.memory.buffer, no, m).slice();
}

/** out = aᵀ for a row-major [r, c] matrix, r and c multiples of 4 (kernels.wat `transpose`). */
export function transposeWasm(src: Float32Array, r: number, c: number, out: Float32Array): void {
  const k = need();
  if (r % 4 !== 0 || c % 4 !== 0) throw new Error(`transposeWasm: [${r}, ${c}] is not a multiple of 4 in both dimensions`);
  const a = new Arena(k);
  const [ao, oo] = [a.allocFloats(r * c), a.allocFloats(r * c)];
  a.commit();
  a.f32(ao, r * c).set(src.subarray(0, r * c));
  k.transpose(r, c, ao, oo);
  out.set(a.f32(oo, r * c));
}
