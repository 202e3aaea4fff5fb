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
