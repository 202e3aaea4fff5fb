/**
 * Dead-latent resampling (sae/resample.ts) against a float64 reference: the dead latents' decoder rows become the
 * unit directions of distinct sampled rows' x − b_dec, their encoder columns the same direction at 0.2 × the alive
 * columns' mean norm, their per-latent vectors the given values and their optimiser moments zero — and nothing of an
 * alive latent changes. The draw never picks a row the SAE reconstructs exactly, and follows the weights.
 */
import { describe, expect, it } from 'vitest';
import { Rng, createOptimizer, deadForResampling, isResampleStep, resampleLatents, weightedSampleWithoutReplacement } from '../src/index.js';
import { randomTensor } from '../src/testing.js';

describe('weightedSampleWithoutReplacement', () => {
  it('draws distinct indices, never a zero weight, first draws in proportion to the weights', () => {
    const w = Float64Array.from([0, 1, 3, 0, 6]);
    const counts = [0, 0, 0, 0, 0];
    const rng = new Rng(3);
    for (let t = 0; t < 20_000; t++) {
      const s = weightedSampleWithoutReplacement(w, 2, rng);
      expect(new Set(s).size).toBe(2);
      for (const i of s) expect(w[i]).toBeGreaterThan(0);
      counts[s[0]!]!++;
    }
    // Expected first-draw shares 0.1, 0.3, 0.6: 20k draws give a standard error below 0.004.
    expect(counts[1]! / 20_000).toBeCloseTo(0.1, 1);
    expect(counts[2]! / 20_000).toBeCloseTo(0.3, 1);
    expect(counts[4]! / 20_000).toBeCloseTo(0.6, 1);
    expect(weightedSampleWithoutReplacement(w, 9, rng).sort()).toEqual([1, 2, 4]); // at most the non-zero ones
  });
});

describe('resampleLatents', () => {
  const d = 5;
  const m = 7;
  const rows = 6;
  const setup = () => {
    const rng = new Rng(11);
    const params = {
      W_enc: randomTensor([d, m], rng, 0.5),
      W_dec: randomTensor([m, d], rng, 0.5),
      b_enc: randomTensor([m], rng, 0.1),
      b_dec: randomTensor([d], rng, 0.1),
      gate: randomTensor([m], rng, 0.1),
    };
    const x = randomTensor([rows, d], rng);
    const xHat = randomTensor([rows, d], rng);
    xHat.data.set(x.data.subarray(2 * d, 3 * d), 2 * d); // row 2 is reconstructed exactly: never drawn
    const opt = createOptimizer({ kind: 'adam', lr: 1e-2 }, params);
    opt.step(params, { W_enc: randomTensor([d, m], rng), W_dec: randomTensor([m, d], rng), b_enc: randomTensor([m], rng), b_dec: randomTensor([d], rng), gate: randomTensor([m], rng) });
    return { params, x, xHat, opt };
  };

  it('matches the float64 reference and leaves alive latents bit-identical', () => {
    const { params, x, xHat, opt } = setup();
    const before = Object.fromEntries(Object.entries(params).map(([k, t]) => [k, Float64Array.from(t.data)]));
    const slotsBefore = opt.getState().slots;
    const dead = [1, 4, 5];
    const n = resampleLatents(params, dead, x, xHat, { every: 10, until: 60, seed: 0, encoderScale: 0.2, step: 10, unitNormDecoder: false, latentResets: { b_enc: 0, gate: -1 }, optimizer: opt });
    expect(n).toBe(3);
    const alive = [0, 2, 3, 6];
    // Reference, float64: mean norms over the alive latents before the resample.
    const colNorm = (i: number) => Math.hypot(...Array.from({ length: d }, (_, j) => before.W_enc![j * m + i]!));
    const rowNorm = (i: number) => Math.hypot(...Array.from({ length: d }, (_, j) => before.W_dec![i * d + j]!));
    const encNorm = (0.2 * alive.reduce((a, i) => a + colNorm(i), 0)) / alive.length;
    const decNorm = alive.reduce((a, i) => a + rowNorm(i), 0) / alive.length;
    const usedRows = new Set<number>();
    for (const i of dead) {
      const row = Array.from({ length: d }, (_, j) => params.W_dec.data[i * d + j]!);
      // Which sampled row: the one whose x − b_dec direction the decoder row is.
      const match = Array.from({ length: rows }, (_, r) => r).find((r) => {
        const u = Array.from({ length: d }, (_, j) => x.data[r * d + j]! - before.b_dec![j]!);
        const nu = Math.hypot(...u);
        return u.every((v, j) => Math.abs((v / nu) * decNorm - row[j]!) < 1e-6);
      });
      expect(match, `latent ${i}'s decoder row is some row's x − b_dec direction`).toBeDefined();
      expect(match).not.toBe(2);
      usedRows.add(match!);
      const u = Array.from({ length: d }, (_, j) => x.data[match! * d + j]! - before.b_dec![j]!);
      const nu = Math.hypot(...u);
      for (let j = 0; j < d; j++) expect(params.W_enc.data[j * m + i]).toBeCloseTo((u[j]! / nu) * encNorm, 6);
      expect(params.b_enc.data[i]).toBe(0);
      expect(params.gate.data[i]).toBe(-1);
    }
    expect(usedRows.size).toBe(3); // without replacement
    for (const i of alive) {
      for (let j = 0; j < d; j++) {
        expect(params.W_enc.data[j * m + i]).toBe(Math.fround(before.W_enc![j * m + i]!));
        expect(params.W_dec.data[i * d + j]).toBe(Math.fround(before.W_dec![i * d + j]!));
      }
      expect(params.b_enc.data[i]).toBe(Math.fround(before.b_enc![i]!));
    }
    // Adam: first moments zero at the resampled entries, second moments the mean of the parameter's other entries
    // (float64 reference), both unchanged elsewhere.
    const slots = opt.getState().slots;
    const meanOfRest = (name: string, isReset: (k: number) => boolean) => {
      const v = slotsBefore.exp_avg_sq![name]!.data;
      let s = 0;
      let n = 0;
      for (let k = 0; k < v.length; k++) if (!isReset(k)) (s += v[k]!), n++;
      return s / n;
    };
    const fill: Record<string, Record<string, number>> = {
      exp_avg: { W_dec: 0, W_enc: 0, gate: 0 },
      exp_avg_sq: {
        W_dec: meanOfRest('W_dec', (k) => dead.includes(Math.floor(k / d))),
        W_enc: meanOfRest('W_enc', (k) => dead.includes(k % m)),
        gate: meanOfRest('gate', (k) => dead.includes(k)),
      },
    };
    for (const s of ['exp_avg', 'exp_avg_sq']) {
      for (let i = 0; i < m; i++) {
        const isDead = dead.includes(i);
        for (let j = 0; j < d; j++) {
          expect(slots[s]!.W_dec!.data[i * d + j]).toBe(Math.fround(isDead ? fill[s]!.W_dec! : slotsBefore[s]!.W_dec!.data[i * d + j]!));
          expect(slots[s]!.W_enc!.data[j * m + i]).toBe(Math.fround(isDead ? fill[s]!.W_enc! : slotsBefore[s]!.W_enc!.data[j * m + i]!));
        }
        expect(slots[s]!.gate!.data[i]).toBe(Math.fround(isDead ? fill[s]!.gate! : slotsBefore[s]!.gate!.data[i]!));
      }
      expect(Array.from(slots[s]!.b_dec!.data)).toEqual(Array.from(slotsBefore[s]!.b_dec!.data));
    }
    expect(fill.exp_avg_sq!.W_dec).toBeGreaterThan(0);
  });

  it('gives unit decoder rows for unit-norm decoders, and names a bad per-latent vector', () => {
    const { params, x, xHat } = setup();
    resampleLatents(params, [0], x, xHat, { every: 10, until: 60, seed: 1, encoderScale: 0.2, step: 20, unitNormDecoder: true, latentResets: {} });
    expect(Math.hypot(...params.W_dec.data.subarray(0, d))).toBeCloseTo(1, 6);
    expect(() => resampleLatents(params, [0], x, xHat, { every: 10, until: 60, seed: 1, encoderScale: 0.2, step: 20, unitNormDecoder: true, latentResets: { b_dec: 0 } })).toThrow(/'b_dec' is not a per-latent vector of length 7/);
  });

  it('schedules events every `every` steps up to `until`, and calls dead what has not fired for `every` steps', () => {
    const o = { every: 10, until: 30, seed: 0, encoderScale: 0.2 };
    expect([0, 5, 10, 20, 30, 40].map((s) => isResampleStep(o, s))).toEqual([false, false, true, true, true, false]);
    expect(deadForResampling(Float64Array.from([0, 9, 10, 11, 20]), 20, o)).toEqual([0, 1, 2]);
  });
});
