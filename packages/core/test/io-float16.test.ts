import { describe, expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import { bf16ToF32Array, f16BitsToNumber, f16ToF32Array, f32ToF16Array, numberToF16Bits } from '../src/io/float16.js';

// Known IEEE 754 binary16 bit patterns (from the standard / Wikipedia's half-precision table).
const KNOWN: [number, number][] = [
  [0x0000, 0],
  [0x3c00, 1],
  [0xc000, -2],
  [0x3555, 0.333251953125],
  [0x7bff, 65504],
  [0x0001, 2 ** -24], // smallest subnormal
  [0x03ff, 2 ** -14 - 2 ** -24], // largest subnormal
  [0x0400, 2 ** -14], // smallest normal
  [0x3bff, 1 - 2 ** -11],
  [0x3c01, 1 + 2 ** -10],
  [0x7c00, Infinity],
  [0xfc00, -Infinity],
];

describe('float16', () => {
  it('decodes known bit patterns', () => {
    for (const [bits, value] of KNOWN) expect(f16BitsToNumber(bits)).toBe(value);
    expect(Object.is(f16BitsToNumber(0x8000), -0)).toBe(true);
    expect(f16BitsToNumber(0x7e00)).toBeNaN();
    expect(f16BitsToNumber(0xfc01)).toBeNaN();
    const arr = f16ToF32Array(Uint16Array.from(KNOWN.map(([b]) => b)));
    expect(Array.from(arr)).toEqual(KNOWN.map(([, v]) => v));
  });

  it('encodes known values to their bit patterns', () => {
    for (const [bits, value] of KNOWN) expect(numberToF16Bits(value)).toBe(bits);
    expect(numberToF16Bits(-0)).toBe(0x8000);
    expect(numberToF16Bits(Number.NaN) & 0x7c00).toBe(0x7c00);
    expect(numberToF16Bits(Number.NaN) & 0x3ff).not.toBe(0);
  });

  it('rounds to nearest, ties to even, with overflow and underflow', () => {
    expect(numberToF16Bits(65519)).toBe(0x7bff); // below the halfway point to 65536
    expect(numberToF16Bits(65520)).toBe(0x7c00); // halfway: ties to even = Inf
    expect(numberToF16Bits(1e9)).toBe(0x7c00);
    expect(numberToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even mantissa (0)
    expect(numberToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even mantissa (2)
    expect(numberToF16Bits(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal → 0
    expect(numberToF16Bits(1.5 * 2 ** -25)).toBe(0x0001);
    expect(numberToF16Bits(3 * 2 ** -25)).toBe(0x0002); // tie between subnormals 1 and 2 → 2
    expect(numberToF16Bits(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up from the largest subnormal into the normals
  });

  it('every finite half survives f16 → f32 → f16, and f32 → f16 is the nearest half', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const wide = f16ToF32Array(all);
    const back = f32ToF16Array(wide);
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(wide[h])) expect(Number.isNaN(f16BitsToNumber(back[h]!))).toBe(true);
      else expect(back[h]).toBe(h);
    }
    // Nearest-ness against a brute-force float64 reference: the closest finite half by binary search.
    const finite = Float64Array.from(Array.from(wide).filter((v) => Number.isFinite(v))).sort();
    const nearestDistance = (x: number) => {
      let lo = 0;
      let hi = finite.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (finite[mid]! <= x) lo = mid;
        else hi = mid;
      }
      return Math.min(Math.abs(finite[lo]! - x), Math.abs(finite[hi]! - x));
    };
    const rng = new Rng(7);
    for (let i = 0; i < 20000; i++) {
      const x = Math.fround((rng.uniform() - 0.5) * 2 ** (rng.int(40) - 24));
      expect(Math.abs(f16BitsToNumber(numberToF16Bits(x)) - x)).toBe(nearestDistance(x));
    }
  });

  it('widens bfloat16', () => {
    expect(Array.from(bf16ToF32Array(Uint16Array.of(0x3f80, 0xc040, 0x0000, 0x7f80, 0xff80)))).toEqual([1, -3, 0, Infinity, -Infinity]);
  });
});
