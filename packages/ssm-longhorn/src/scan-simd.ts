/**
 * The WebAssembly SIMD scan (wasm/kernels.wat): the Longhorn transitions in float32, four channels per f32x4 vector,
 * state stored transposed (S[j, i]). V8 does not vectorise the TypeScript loops of scan.ts; this runs the same
 * recurrences, checkpoints and adjoint ~7× faster on one core. scan.ts dispatches here for float32 inputs when
 * `simdScanAvailable` (the float64 TypeScript kernel stays the reference; tests compare the two).
 */
import type { ScanShape, Transition } from './scan.js';
import { Arena, type KernelExports, simdKernels } from './wasm/instance.js';

const KIND: Partial<Record<Transition, number>> = { 'longhorn-diag': 0, 'longhorn-exact': 1 };

/** Whether the SIMD kernel runs this transition at this width (Longhorn transitions, d_inner a multiple of 4). */
export function simdScanAvailable(kind: Transition, dInner: number): boolean {
  return KIND[kind] !== undefined && dInner % 4 === 0 && simdKernels() !== null;
}

function need(kind: Transition, dInner: number): { k: KernelExports; kind: number } {
  if (!simdScanAvailable(kind, dInner)) throw new Error(`simd scan: unavailable for ${kind} at d_inner ${dInner} (needs a Longhorn transition, d_inner % 4 = 0, WebAssembly SIMD)`);
  return { k: simdKernels()!, kind: KIND[kind]! };
}

/**
 * Forward: y [B, L, d], the coefficients ε = 1/(1 + e^{−z} + ‖k‖²) [B, L, d] and the state checkpoints
 * [B, nSeg, n, d] (transposed layout).
 */
export function simdScanForward(
  kind: Transition, shape: ScanShape, chunk: number,
  x: Float32Array, z: Float32Array, k: Float32Array, q: Float32Array,
): { y: Float32Array; coef: Float32Array; checkpoints: Float32Array } {
  const { batch: B, seqLen: L, dInner: d, dState: n } = shape;
  const { k: wasm, kind: kindId } = need(kind, d);
  const rows = B * L;
  const nCk = B * Math.ceil(L / chunk) * d * n;
  const a = new Arena(wasm);
  const [px, pc, pk, pq, py, pck, pS, pkv] = [rows * d, rows * d, rows * n, rows * n, rows * d, nCk, d * n, 12 * n].map((f) => a.alloc(f));
  a.commit();
  a.f32(px!, rows * d).set(x);
  a.f32(py!, rows * d).set(z); // y's buffer holds z until the coefficients are made
  a.f32(pk!, rows * n).set(k);
  a.f32(pq!, rows * n).set(q);
  wasm.longhorn_coef(rows, d, n, py!, pk!, pc!);
  wasm.scan_fwd(kindId, B, L, d, n, chunk, px!, pc!, pk!, pq!, py!, pck!, pS!, pkv!);
  return { y: a.f32(py!, rows * d).slice(), coef: a.f32(pc!, rows * d).slice(), checkpoints: a.f32(pck!, nCk).slice() };
}

/** Backward: gx, gz (∂z_β), gk, gq, from the forward's coefficients and checkpoints. */
export function simdScanBackward(
  kind: Transition, shape: ScanShape, chunk: number,
  x: Float32Array, coef: Float32Array, k: Float32Array, q: Float32Array, gy: Float32Array, checkpoints: Float32Array,
): { gx: Float32Array; gz: Float32Array; gk: Float32Array; gq: Float32Array } {
  const { batch: B, seqLen: L, dInner: d, dState: n } = shape;
  const { k: wasm, kind: kindId } = need(kind, d);
  const rows = B * L;
  const nCk = checkpoints.length;
  const a = new Arena(wasm);
  const sizes = [rows * d, rows * d, rows * n, rows * n, rows * d, nCk, (chunk + 1) * d * n, d * n, 12 * n, 8 * n, rows * d, rows * d, rows * n, rows * n];
  const [px, pc, pk, pq, pgy, pck, pbuf, pG, pkv, pacc, pgx, pgz, pgk, pgq] = sizes.map((f) => a.alloc(f));
  a.commit();
  a.f32(px!, rows * d).set(x);
  a.f32(pc!, rows * d).set(coef);
  a.f32(pk!, rows * n).set(k);
  a.f32(pq!, rows * n).set(q);
  a.f32(pgy!, rows * d).set(gy);
  a.f32(pck!, nCk).set(checkpoints);
  wasm.scan_bwd(kindId, B, L, d, n, chunk, px!, pc!, pk!, pq!, pgy!, pck!, pbuf!, pG!, pkv!, pacc!, pgx!, pgz!, pgk!, pgq!);
  return {
    gx: a.f32(pgx!, rows * d).slice(),
    gz: a.f32(pgz!, rows * d).slice(),
    gk: a.f32(pgk!, rows * n).slice(),
    gq: a.f32(pgq!, rows * n).slice(),
  };
}
