/**
 * ReLU trains with dead-latent resampling (its recipe; core sae/resample.ts): latents killed at init fire again
 * after the first event, where without resampling they stay dead; and a run stopped between events and resumed
 * from its exported state ends bit-identical to the straight run.
 */
import { describe, expect, it } from 'vitest';
import { Rng, SaeTrainer, cloneParams, jsEngine, recipeOptions, syntheticSparseData } from '@saelab/core';
import { relu } from '../src/index.js';

const cfg = relu.configSchema.parse({ dIn: 8, dSae: 32 });
const { x } = syntheticSparseData({ rows: 64 * 40, dIn: 8, features: 24, meanActive: 2, seed: 5 });
const batch = (i: number) => ({ data: x.data.slice(i * 64 * 8, (i + 1) * 64 * 8), shape: [64, 8] });
const start = () => {
  const p = relu.init(cfg, new Rng(2));
  for (let i = 0; i < 12; i++) p.b_enc.data[i] = -1e3; // 12 latents that can never fire
  return p;
};
const options = (resample: boolean) => {
  const o = recipeOptions(relu, 40, 0.05, cfg);
  o.optimizer.lr = 3e-3;
  if (!resample) o.resample = null;
  return o;
};

describe('relu: dead-latent resampling', () => {
  it('the recipe resamples every 10% of the run up to 60%', () => {
    expect(options(true).resample).toMatchObject({ every: 4, until: 24 });
  });
  it('revives latents that cannot fire; without it they stay dead', async () => {
    const dead = async (resample: boolean) => {
      const t = new SaeTrainer(relu, cfg, start(), options(resample), { engine: jsEngine });
      for (let i = 0; i < 30; i++) {
        if (i === 26) t.resetFiringWindow();
        await t.trainStep(batch(i));
      }
      return { dead: t.deadFractionInWindow(), resampled: t.resampledLatents };
    };
    const off = await dead(false);
    const on = await dead(true);
    expect(off.dead).toBeGreaterThanOrEqual(12 / 32);
    expect(off.resampled).toBe(0);
    expect(on.resampled).toBeGreaterThanOrEqual(12);
    expect(on.dead).toBeLessThan(off.dead - 6 / 32);
  });
  it('resumes bit-exactly across resampling events', async () => {
    const straight = new SaeTrainer(relu, cfg, start(), options(true), { engine: jsEngine });
    for (let i = 0; i < 30; i++) await straight.trainStep(batch(i));
    const first = new SaeTrainer(relu, cfg, start(), options(true), { engine: jsEngine });
    for (let i = 0; i < 10; i++) await first.trainStep(batch(i));
    const saved = JSON.parse(JSON.stringify(first.exportState()));
    const resumed = new SaeTrainer(relu, cfg, cloneParams(first.params), options(true), { engine: jsEngine });
    resumed.importState(saved);
    resumed.optimizer.setState(first.optimizer.getState());
    for (let i = 10; i < 30; i++) await resumed.trainStep(batch(i));
    expect(resumed.resampledLatents).toBe(straight.resampledLatents);
    for (const name of ['W_enc', 'W_dec', 'b_enc', 'b_dec']) expect(Array.from(resumed.params[name]!.data), name).toEqual(Array.from(straight.params[name]!.data));
  });
});
