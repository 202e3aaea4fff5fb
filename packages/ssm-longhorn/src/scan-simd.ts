/**
 * The WebAssembly SIMD scan (wasm/kernels.wat): all three transitions in float32, four channels per f32x4 vector,
 * state stored transposed (S[j, i]). V8 does not vectorise the TypeScript loops of scan.ts; this runs the same
 * recurrences, checkpoints and adjoint ~7× faster on one core. scan.ts dispatches here for float32 inputs when
 * `simdScanAvailable` (the float64 TypeScript kernel stays the reference; tests compare the two).
 */
import type { ScanShape, Transition } from './scan.js';
import { Arena, type KernelExports, simdKernels } from './wasm/instance.js';

const KIND: Partial<Record<Transition, number>> = { 'longhorn-diag': 0, 'longhorn-exact': 1, mamba: 2 };

/** Whether the SIMD kernel runs: one of its three transitions, d_inner a multiple of 4, WebAssembly SIMD present. */
export function simdScanAvailable(kind: Transition, dInner: number): boolean {
  return KIND[kind] !== undefined && dInner % 4 === 0 && simdKernels() !== null;
}

function need(kind: Transition, dInner: number): { k: KernelExports; kind: number } {
  if (!simdScanAvailable(kind, dInner)) throw new Error(`simd scan: unavailable at d_inner ${dInner} (needs d_inner % 4 = 0 and WebAssembly SIMD)`);
  return { k: simdKernels()!, kind: KIND[kind]! };
}

/** Mamba: A = −exp(A_log) [d, n], transposed to [n, d]. */
function transposedA(aLog: ArrayLike<number>, d: number, n: number): Float32Array {
  const A = new Float32Array(n * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < n; j++) A[j * d + i] = -Math.exp(aLog[i * n + j]!);
  return A;
}


/**
 * Forward: y [B, L, d], the coefficients ε = 1/(1 + e^{−z} + ‖k‖²) [B, L, d] and the state checkpoints
 * [B, nSeg, n, d] (transposed layout).
 */
export function simdScanForward(
  kind: Transition, shape: ScanShape, chunk: number,
  x: Float32Array, z: Float32Array, k: Float32Array, q: Float32Array, aLog?: ArrayLike<number>,
): { y: Float32Array; coef: Float32Array; checkpoints: Float32Array } {
  const { batch: B, seqLen: L, dInner: d, dState: n } = shape;
  const { k: wasm, kind: kindId } = need(kind, d);
  const mamba = kind === 'mamba';
  const rows = B * L;
  const nCk = B * Math.ceil(L / chunk) * d * n;
  const a = new Arena(wasm);
  const sizes = [rows * d, rows * d, rows * n, rows * n, rows * d, nCk, d * n, 12 * n, mamba ? d * n : 0];
  const [px, pc, pk, pq, py, pck, pS, pkv, pA] = sizes.map((f) => a.allocFloats(f));
  a.commit();
  a.f32(px!, rows * d).set(x);
  a.f32(pk!, rows * n).set(k);
  a.f32(pq!, rows * n).set(q);
  a.f32(py!, rows * d).set(z); // y's buffer holds z until the coefficients are made
  if (mamba) {
    wasm.softplus(rows * d, py!, pc!); // Δ = softplus(z)
    a.f32(pA!, d * n).set(transposedA(aLog!, d, n));
  } else {
    wasm.longhorn_coef(rows, d, n, py!, pk!, pc!); // ε = 1/(1 + e^{−z} + ‖k‖²)
  }
  wasm.scan_fwd(kindId, B, L, d, n, chunk, px!, pc!, pk!, pq!, py!, pck!, pS!, pkv!, pA!);
  return { y: a.f32(py!, rows * d).slice(), coef: a.f32(pc!, rows * d).slice(), checkpoints: a.f32(pck!, nCk).slice() };
}

/** Backward: gx, gz (∂z_β), gk, gq, from the forward's coefficients and checkpoints. */
export function simdScanBackward(
  kind: Transition, shape: ScanShape, chunk: number,
  x: Float32Array, coef: Float32Array, k: Float32Array, q: Float32Array, gy: Float32Array, checkpoints: Float32Array,
  z: Float32Array, aLog?: ArrayLike<number>,
): { gx: Float32Array; gz: Float32Array; gk: Float32Array; gq: Float32Array; gALog?: Float32Array } {
  const { batch: B, seqLen: L, dInner: d, dState: n } = shape;
  const { k: wasm, kind: kindId } = need(kind, d);
  const mamba = kind === 'mamba';
  const rows = B * L;
  const nCk = checkpoints.length;
  const a = new Arena(wasm);
  const dnA = mamba ? d * n : 0;
  const sizes = [rows * d, rows * d, rows * n, rows * n, rows * d, nCk, (chunk + 1) * d * n, d * n, 12 * n, 8 * n, rows * d, rows * d, rows * n, rows * n, dnA, dnA, rows * d];
  const [px, pc, pk, pq, pgy, pck, pbuf, pG, pkv, pacc, pgx, pgz, pgk, pgq, pA, pgA, pz] = sizes.map((f) => a.allocFloats(f));
  a.commit();
  if (mamba) {
    a.f32(pA!, dnA).set(transposedA(aLog!, d, n));
    a.f32(pgA!, dnA).fill(0);
  }
  a.f32(pz!, rows * d).set(z);
  a.f32(px!, rows * d).set(x);
  a.f32(pc!, rows * d).set(coef);
  a.f32(pk!, rows * n).set(k);
  a.f32(pq!, rows * n).set(q);
  a.f32(pgy!, rows * d).set(gy);
  a.f32(pck!, nCk).set(checkpoints);
  wasm.scan_bwd(kindId, B, L, d, n, chunk, px!, pc!, pk!, pq!, pgy!, pck!, pbuf!, pG!, pkv!, pacc!, pgx!, pgz!, pgk!, pgq!, pA!, pgA!, pz!);
  if (mamba) wasm.mul_sigmoid(rows * d, pgz!, pz!); // the kernel leaves ∂Δ in gz: ∂z = ∂Δ σ(z)
  const out = {
    gx: a.f32(pgx!, rows * d).slice(),
    gz: a.f32(pgz!, rows * d).slice(),
    gk: a.f32(pgk!, rows * n).slice(),
    gq: a.f32(pgq!, rows * n).slice(),
  };
  if (!mamba) return out;
  // ∂A_log = ∂A ⊙ A (A = −exp(A_log)).
  const gAT = a.f32(pgA!, dnA);
  const gALog = new Float32Array(dnA);
  for (let i = 0; i < d; i++) for (let j = 0; j < n; j++) gALog[i * n + j] = gAT[j * d + i]! * -Math.exp(aLog![i * n + j]!);
  return { ...out, gALog };
}
