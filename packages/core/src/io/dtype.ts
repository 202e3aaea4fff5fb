/**
 * Element types the readers understand, and the conversion of raw little-endian bytes to float32.
 * Shared by the safetensors and .npy readers so that both widen identically.
 */
import { endianness } from 'node:os';
import { bf16ToF32Array, f16ToF32Array } from './float16.js';

/** Storage element types we read; everything is widened (or narrowed, for float64) to float32. */
export type FloatDtype = 'float32' | 'float16' | 'bfloat16' | 'float64';

export const DTYPE_BYTES: Record<FloatDtype, number> = { float32: 4, float16: 2, bfloat16: 2, float64: 8 };

// Typed arrays use the host byte order and both formats are little-endian; every supported Node platform is
// little-endian, but fail loudly rather than silently byte-swap garbage if that ever changes.
if (endianness() !== 'LE') throw new Error('@saelab/core io: a little-endian host is required');

/**
 * Converts `bytes` (little-endian elements of `dtype`) to a new Float32Array. Copies first so the
 * typed-array views are aligned whatever the byte offset inside the file buffer.
 */
export function bytesToFloat32(bytes: Uint8Array, dtype: FloatDtype): Float32Array {
  const size = DTYPE_BYTES[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new Error(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements (${size} bytes each)`);
  }
  // new Uint8Array(x) always copies (Buffer#slice would not): fresh, 0-offset, aligned.
  const copy = new Uint8Array(bytes).buffer;
  const n = bytes.byteLength / size;
  switch (dtype) {
    case 'float32':
      return new Float32Array(copy, 0, n);
    case 'float64':
      return Float32Array.from(new Float64Array(copy, 0, n));
    case 'float16':
      return f16ToF32Array(new Uint16Array(copy, 0, n));
    case 'bfloat16':
      return bf16ToF32Array(new Uint16Array(copy, 0, n));
  }
}

/** The bytes of a Float32Array (a view, no copy). */
export function float32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
