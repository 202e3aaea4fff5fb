import { describe, expect, it } from 'vitest';
import { columnSums, subRowVector } from '../src/kernels.js';
import { addRow64, columnSums64, maxRelError, toMat64 } from '../src/reference.js';
import { Rng } from '../src/rng.js';
import { zeros } from '../src/tensor.js';

const random = (shape: number[], seed: number) => {
  const t = zeros(shape);
  new Rng(seed).fillNormal(t.data);
  return t;
};

describe('dense kernels vs their float64 references', () => {
  it('subRowVector: m[i, :] − v', () => {
    const m = random([37, 19], 1);
    const v = random([19], 2);
    expect(maxRelError(subRowVector(m, v).data, addRow64(toMat64(m), v.data, -1).data)).toBeLessThan(1e-6);
  });

  it('columnSums, plain and scaled', () => {
    const m = random([301, 23], 3);
    const ref = columnSums64(toMat64(m));
    expect(maxRelError(columnSums(m).data, ref)).toBeLessThan(1e-6);
    expect(maxRelError(columnSums(m, 0.25).data, ref.map((x) => x * 0.25))).toBeLessThan(1e-6);
  });

  it('shape errors name the operation', () => {
    expect(() => subRowVector(random([3, 4], 4), random([5], 5))).toThrow(/subRowVector bias: expected a vector of length 4/);
  });
});
