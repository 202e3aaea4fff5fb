import { describe, expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import { clipGradNorm, lrAt, warmupCoefficient } from '../src/schedule.js';
import { type Params, zeros } from '../src/tensor.js';

describe('lrAt', () => {
  const base = 3e-4;

  it('constant with warm-up: linear from base/W at step 0 to base at step W−1, then flat', () => {
    const s = { kind: 'constant', warmupSteps: 10 } as const;
    for (let t = 0; t < 30; t++) expect(lrAt(t, base, s)).toBeCloseTo(base * Math.min(1, (t + 1) / 10), 15);
    expect(lrAt(0, base, { kind: 'constant' })).toBe(base);
  });

  it('cosine: half-cosine from base (end of warm-up) to the floor at totalSteps, flat after', () => {
    const s = { kind: 'cosine', warmupSteps: 20, totalSteps: 220, minLrFraction: 0.1 } as const;
    const ref = (t: number) => {
      if (t < 20) return (base * (t + 1)) / 20;
      const p = Math.min(1, (t - 20) / 200);
      return base * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * p)));
    };
    for (let t = 0; t < 260; t++) expect(lrAt(t, base, s)).toBeCloseTo(ref(t), 15);
    expect(lrAt(20, base, s)).toBeCloseTo(base, 15);
    expect(lrAt(120, base, s)).toBeCloseTo(base * 0.55, 15);
    expect(lrAt(220, base, s)).toBeCloseTo(base * 0.1, 15);
  });

  it('linear-decay: flat, then linearly to 0 over the last decayFraction of steps (ReLU April recipe)', () => {
    const s = { kind: 'linear-decay', warmupSteps: 0, totalSteps: 100 } as const; // decayFraction defaults to 0.2
    for (let t = 0; t <= 80; t++) expect(lrAt(t, base, s)).toBe(base);
    expect(lrAt(90, base, s)).toBeCloseTo(base / 2, 15);
    expect(lrAt(99, base, s)).toBeCloseTo(base / 20, 15);
    expect(lrAt(100, base, s)).toBe(0);
    expect(lrAt(150, base, s)).toBe(0);
    for (let t = 81; t < 100; t++) expect(lrAt(t, base, s)).toBeLessThan(lrAt(t - 1, base, s));
    expect(lrAt(50, base, { ...s, decayFraction: 0.5 })).toBe(base);
    expect(lrAt(75, base, { ...s, decayFraction: 0.5 })).toBeCloseTo(base / 2, 15);
  });

  it('rejects bad schedules and steps with a message naming the problem', () => {
    expect(() => lrAt(0, base, { kind: 'cosine', warmupSteps: 0 })).toThrow(/totalSteps/);
    expect(() => lrAt(0, base, { kind: 'constant', warmupSteps: -1 })).toThrow(/warmupSteps/);
    expect(() => lrAt(0, base, { kind: 'linear-decay', totalSteps: 10, decayFraction: 0 })).toThrow(/decayFraction/);
    expect(() => lrAt(0, base, { kind: 'cosine', warmupSteps: 20, totalSteps: 10 })).toThrow(/warmupSteps/);
    expect(() => lrAt(-1, base, { kind: 'constant' })).toThrow(/step/);
    expect(() => lrAt(1.5, base, { kind: 'constant' })).toThrow(/step/);
    expect(() => lrAt(0, Number.NaN, { kind: 'constant' })).toThrow(/baseLr/);
  });
});

describe('warmupCoefficient', () => {
  it('rises linearly from exactly 0 to the final value, then stays', () => {
    expect(warmupCoefficient(0, 100, 5)).toBe(0);
    expect(warmupCoefficient(25, 100, 5)).toBeCloseTo(1.25, 15);
    expect(warmupCoefficient(100, 100, 5)).toBe(5);
    expect(warmupCoefficient(1000, 100, 5)).toBe(5);
    expect(warmupCoefficient(0, 0, 5)).toBe(5);
    expect(() => warmupCoefficient(0, -3, 5)).toThrow(/warmupSteps/);
  });
});

describe('clipGradNorm', () => {
  const make = (seed: number, scale: number): Params => {
    const rng = new Rng(seed);
    const p: Params = { a: zeros([13, 4]), b: zeros([9]) };
    for (const t of Object.values(p)) for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal() * scale;
    return p;
  };
  const refNorm = (p: Params) => Math.sqrt(Object.values(p).reduce((s, t) => s + Array.from(t.data).reduce((u, v) => u + v * v, 0), 0));

  it('returns the global pre-clip L2 norm and rescales to maxNorm when above it', () => {
    const g = make(1, 3);
    const before = structuredClone(g);
    const n0 = refNorm(g);
    expect(clipGradNorm(g, 1)).toBeCloseTo(n0, 10);
    expect(refNorm(g)).toBeCloseTo(1, 5);
    const coef = 1 / (n0 + 1e-6);
    for (const k of Object.keys(g)) g[k]!.data.forEach((v, i) => expect(v).toBeCloseTo(before[k]!.data[i]! * coef, 6));
  });

  it('leaves gradients untouched when below maxNorm or when maxNorm is 0 (off)', () => {
    const g = make(2, 0.01);
    const before = structuredClone(g);
    const n0 = clipGradNorm(g, 100);
    expect(n0).toBeCloseTo(refNorm(before), 10);
    const big = make(3, 10);
    const bigBefore = structuredClone(big);
    clipGradNorm(big, 0);
    expect(big).toEqual(bigBefore);
    expect(g).toEqual(before);
  });

  it('throws on non-finite gradients, naming the tensor', () => {
    const g = make(4, 1);
    g.b!.data[3] = Number.NaN;
    expect(() => clipGradNorm(g, 1)).toThrow(/'b'/);
    expect(() => clipGradNorm(make(5, 1), -1)).toThrow(/maxNorm/);
  });
});
