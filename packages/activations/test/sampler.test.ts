import { describe, expect, it } from 'vitest';
import { Sampler, XorShiftRng, argmax } from '../src/llama2c/sampler.js';

describe('run.c sampler', () => {
  it('xorshift64* draws the same numbers as run.c', () => {
    // Printed by run.c's random_u32 / random_f32, compiled with gcc, for seed 42 (and 1700000000).
    const rng = new XorShiftRng(42);
    expect([rng.nextU32(), rng.nextU32(), rng.nextU32(), rng.nextU32()]).toEqual([1456360119, 3359763283, 3393612768, 4054632243]);
    expect(rng.nextF32()).toBeCloseTo(0.764393628, 8);
    expect(rng.nextF32()).toBeCloseTo(0.835739851, 8);
    expect(rng.nextF32()).toBeCloseTo(0.204219699, 8);
    expect(new XorShiftRng(1700000000).nextU32()).toBe(1796151179);
  });

  it('argmax takes the first maximum; temperature 0 is argmax', () => {
    expect(argmax([1, 3, 3, 2])).toBe(1);
    expect(new Sampler({ temperature: 0, topp: 0.9, seed: 1 }).sample(Float32Array.of(0, 5, 1))).toBe(1);
  });

  it('sampling frequencies follow softmax(logits / T), and top-p cuts the tail', () => {
    const logits = Float32Array.of(2, 1, 0, -1);
    const p = Array.from(logits, (l) => Math.exp(l / 1.5));
    const z = p.reduce((a, b) => a + b, 0);
    const counts = [0, 0, 0, 0];
    const s = new Sampler({ temperature: 1.5, topp: 1, seed: 7 });
    const n = 20000;
    for (let i = 0; i < n; i++) counts[s.sample(logits)]!++;
    counts.forEach((c, i) => expect(Math.abs(c / n - p[i]! / z)).toBeLessThan(0.015));
    // The most likely token alone has p[0]/z > 0.5, so with top-p 0.5 it is the whole nucleus.
    expect(p[0]! / z).toBeGreaterThan(0.5);
    const top = new Sampler({ temperature: 1.5, topp: 0.5, seed: 7 });
    for (let i = 0; i < 2000; i++) expect(top.sample(logits)).toBe(0);
    // With top-p 0.75 the nucleus is the two most likely tokens (p[0] < 0.75 < p[0] + p[1]); both appear.
    expect((p[0]! + p[1]!) / z).toBeGreaterThan(0.75);
    const two = new Sampler({ temperature: 1.5, topp: 0.75, seed: 7 });
    const seen = new Set(Array.from({ length: 2000 }, () => two.sample(logits)));
    expect([...seen].sort()).toEqual([0, 1]);
  });

  it('rejects a negative temperature', () => {
    expect(() => new Sampler({ temperature: -1, topp: 0.9, seed: 1 })).toThrow(/temperature/);
  });
});
