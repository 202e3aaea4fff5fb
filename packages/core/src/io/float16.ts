/**
 * IEEE 754 half precision (binary16) and bfloat16 ↔ float32 conversion.
 *
 * binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits.
 *   exponent 0      → subnormal: (−1)^s · m · 2^−24 (m = 0 is ±0)
 *   exponent 1..30  → normal:    (−1)^s · 2^(e−15) · (1 + m/1024)
 *   exponent 31     → ±Inf (m = 0) or NaN (m ≠ 0)
 * bfloat16 is the top 16 bits of a float32, so widening it is a shift.
 */

let f16Table: Float32Array | null = null;

/** Decodes one binary16 bit pattern (0..0xFFFF) to a number (exact: every half is a float32). */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : Number.NaN;
  return sign * 2 ** (exp - 15) * (1 + mant / 1024);
}

/** All 65536 halves decoded once (256 KiB): array conversion is then one table look-up per element. */
function table(): Float32Array {
  if (f16Table === null) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToNumber(h);
  }
  return f16Table;
}

/** Widens an array of binary16 bit patterns to float32. */
export function f16ToF32Array(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  if (out.length !== src.length) throw new Error(`f16ToF32Array: output has ${out.length} elements, input ${src.length}`);
  const t = table();
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]!]!;
  return out;
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/**
 * Rounds a number to the nearest binary16 (ties to even), returning its bit pattern. The number is first
 * rounded to float32 (as when narrowing a Float32Array). Overflow gives ±Inf; NaN stays a (quiet) NaN.
 */
export function numberToF16Bits(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15; // the half-precision biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value = M · 2^(exp−150) with M the 24-bit significand; in units of 2^−24 that is M >> (14 − e).
    if (e < -10) return sign; // below half of the smallest subnormal (ties there round to even = 0)
    mant |= 0x800000;
    const shift = 14 - e;
    let m = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1) !== 0)) m++; // may carry into the smallest normal: still correct
    return sign | m;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry into the exponent is the right rounding
  return sign | h; // h ≤ 0x7c00 here: rounding up from 65520+ lands exactly on Inf
}

/** Narrows float32 values to binary16 bit patterns (round to nearest even). */
export function f32ToF16Array(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (out.length !== src.length) throw new Error(`f32ToF16Array: output has ${out.length} elements, input ${src.length}`);
  for (let i = 0; i < src.length; i++) out[i] = numberToF16Bits(src[i]!);
  return out;
}

/** Widens bfloat16 bit patterns to float32 (exact). */
export function bf16ToF32Array(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  if (out.length !== src.length) throw new Error(`bf16ToF32Array: output has ${out.length} elements, input ${src.length}`);
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}
