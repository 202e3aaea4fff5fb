/**
 * WebAssembly plumbing shared by every package with SIMD kernels (core's sparse kernels, ssm-longhorn's scan):
 * instantiating a module committed as base64 (so using a package needs no build step and no wabt), and a bump
 * allocator over its memory. A kernel call allocates its operands, commits (growing the memory), copies them in,
 * runs, and copies the results out, so no JavaScript view outlives a call and growing the memory is always safe.
 */

/** The slice of the WebAssembly API used here (the project's TS lib has no DOM/WebAssembly typings). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const WA = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

/** Instantiates a module from its base64 bytes; null where the runtime lacks WebAssembly (or its SIMD). */
export function instantiateWasm<T extends { memory: WasmMemory }>(base64: string): T | null {
  try {
    return new WA!.Instance(new WA!.Module(Buffer.from(base64, 'base64')), {}).exports as T;
  } catch {
    return null;
  }
}

/** Bump allocator over a module's memory for one kernel call: alloc everything, commit, then fill views. */
export class WasmArena {
  private top: number;
  /** `start`: first byte to use (64-aligned upwards); 64 keeps address 0 free, so a zero pointer means "none". */
  constructor(private readonly k: { memory: WasmMemory }, start = 64) {
    this.top = Math.max(64, Math.ceil(start / 64) * 64);
  }
  /** Reserves `bytes` (64-byte aligned) and returns the byte offset. */
  alloc(bytes: number): number {
    const off = this.top;
    this.top = off + Math.ceil(bytes / 64) * 64;
    return off;
  }
  /** Reserves room for `n` 4-byte values. */
  allocFloats(n: number): number {
    return this.alloc(4 * n);
  }
  /** Grows the memory to hold everything reserved so far; call before creating views. */
  commit(): void {
    const need = this.top - this.k.memory.buffer.byteLength;
    if (need > 0) this.k.memory.grow(Math.ceil(need / 65536));
  }
  f32(off: number, n: number): Float32Array {
    return new Float32Array(this.k.memory.buffer, off, n);
  }
  i32(off: number, n: number): Int32Array {
    return new Int32Array(this.k.memory.buffer, off, n);
  }
}
