/**
 * The package's WebAssembly SIMD module (kernels.wat, committed as base64 in kernels-wasm.ts): one instance per
 * thread, created on first use, and a bump allocator over its memory. Every kernel call copies its operands in,
 * runs, and copies its results out — no JavaScript view outlives a call, so growing the memory is always safe.
 *
 * `setSimdKernels(false)` (or SAELAB_LONGHORN_SIMD=0) makes every op take its TypeScript path: the reference that
 * the tests compare the SIMD path with.
 */
import { type WasmMemory, WasmArena, instantiateWasm } from '@saelab/core';
import { KERNELS_WASM_BASE64 } from './kernels-wasm.js';

/** kernels.wat's exports (pointers are byte offsets into `memory`). */
export interface KernelExports {
  memory: WasmMemory;
  longhorn_coef(rows: number, d: number, n: number, z: number, k: number, c: number): void;
  scan_fwd(kind: number, B: number, L: number, d: number, n: number, chunk: number,
    x: number, c: number, k: number, q: number, y: number, ckpt: number, S: number, kv: number, A: number): void;
  scan_bwd(kind: number, B: number, L: number, d: number, n: number, chunk: number,
    x: number, c: number, k: number, q: number, gy: number, ckpt: number, buf: number, G: number, kv: number, acc: number,
    gx: number, gz: number, gk: number, gq: number, A: number, gA: number, z: number): void;
  conv_silu_fwd(B: number, L: number, d: number, K: number, stride: number,
    inp: number, w: number, bias: number, xc: number, sig: number, xs: number): void;
  conv_silu_bwd(B: number, L: number, d: number, K: number, stride: number,
    inp: number, w: number, gxs: number, xc: number, sig: number, gin: number, gw: number, gbias: number): void;
  gate_fwd(rows: number, d: number, stride: number, y: number, xs: number, D: number, z: number, sigZ: number, yg: number): void;
  gate_bwd(rows: number, d: number, stride: number, g: number, z: number, sigZ: number, y: number, gy: number, gz: number): void;
  cross_entropy(rows: number, V: number, logits: number, targets: number, invCount: number, grad: number, stats: number): void;
  softplus(n: number, z: number, out: number): void;
  mul_sigmoid(n: number, g: number, z: number): void;
  dt_fwd(rows: number, R: number, d: number, stride: number, dbl: number, w: number, bias: number, zb: number): void;
  dt_bwd(rows: number, R: number, d: number, stride: number, dbl: number, w: number, gz: number, gdbl: number, gw: number, gbias: number): void;
}

let instance: KernelExports | null | undefined;
let enabled = process.env.SAELAB_LONGHORN_SIMD !== '0';

/** Turns the SIMD kernels on (default, where the runtime has WebAssembly SIMD) or off (TypeScript reference paths). */
export function setSimdKernels(on: boolean): void {
  enabled = on;
}

/** The kernels, or null when turned off or where WebAssembly SIMD is unavailable. */
export function simdKernels(): KernelExports | null {
  if (!enabled) return null;
  if (instance === undefined) instance = instantiateWasm<KernelExports>(KERNELS_WASM_BASE64);
  return instance;
}

let epoch = 0;

/** Counts kernel calls (arenas) so far: a caller holding a `simdScratch` view checks that nothing else ran. */
export const simdEpoch = () => epoch;

/** `WasmArena` that counts kernel calls (see `simdEpoch`). */
export class Arena extends WasmArena {
  constructor(k: KernelExports, start = 64) {
    super(k, start);
    epoch++;
  }
}

/**
 * A float32 view of the module's memory at its base, valid until the next kernel call (which may reuse or grow the
 * memory; `simdEpoch()` tells whether one happened). Lets a large operand live in WebAssembly memory without
 * copies: the LM head writes the logits here, the cross-entropy rewrites them in place into their gradient, and
 * the two gradient GEMMs read them.
 */
export function simdScratch(floats: number, headroomFloats = 1 << 18): Float32Array {
  const k = simdKernels();
  if (!k) throw new Error('simdScratch: WebAssembly SIMD kernels are unavailable');
  const a = new Arena(k);
  const off = a.allocFloats(floats);
  a.allocFloats(headroomFloats); // room for a kernel's small operands above the view without growing (which would detach it)
  a.commit();
  return a.f32(off, floats);
}
