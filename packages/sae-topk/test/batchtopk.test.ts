import { Rng, densePathDifferences, jsEngine } from '@saelab/core';
import { describeConformance } from '@saelab/core/conformance';
import { gradientCheck, matmulRows64, type Params64, randomParams, randomTensor, testEngines, toParams64 } from '@saelab/core/testing';
import { describe, expect, it } from 'vitest';
import { batchTopK, type BatchTopKConfig } from '../src/index.js';

const cfg: BatchTopKConfig = { dIn: 6, dSae: 10, applyBDecToInput: true, k: 3, auxCoefficient: 1 / 32, deadTokensThreshold: 1_000_000, auxRelu: false, auxNormalize: false, thresholdRate: 0.01 };

function pre64(p: Params64, x: Float64Array, rows: number, c = cfg): Float64Array {
  const xin = x.map((v, i) => v - p.b_dec![i % c.dIn]!);
  return matmulRows64(xin, rows, p.W_enc!, c.dIn, c.dSae).map((v, i) => v + p.b_enc![i % c.dSae]!);
}
/** Training latents: the k·B largest positive pre-activations of the whole batch, by sorting (float64 reference). */
function batchTopK64(pre: Float64Array, count: number): Float64Array {
  const order = [...pre.keys()].filter((i) => pre[i]! > 0).sort((a, b) => pre[b]! - pre[a]!);
  const f = new Float64Array(pre.length);
  for (const i of order.slice(0, count)) f[i] = pre[i]!;
  return f;
}
/** Inference latents: the JumpReLU with the stored threshold, pre ⊙ H(pre − max(θ, 0)). */
const encode64 = (p: Params64, x: Float64Array, rows: number) =>
  pre64(p, x, rows).map((v, i) => (v > Math.max(p.threshold![i % cfg.dSae]!, 0) ? v : 0));
const decode64 = (p: Params64, f: Float64Array, rows: number, c = cfg, withBias = true) =>
  matmulRows64(f, rows, p.W_dec!, c.dSae, c.dIn).map((v, i) => v + (withBias ? p.b_dec![i % c.dIn]! : 0));
const sq = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0);
const trainLoss64 = (p: Params64, x: Float64Array, rows: number) => sq(x, decode64(p, batchTopK64(pre64(p, x, rows), cfg.k * rows), rows)) / rows;

// Thresholds positive, so the inference encoder actually gates. A fresh state has no dead latents: loss = MSE.
describeConformance(batchTopK, {
  cfg,
  reference: { encode: encode64, loss: trainLoss64 },
  smoothParams: ['W_enc', 'b_enc', 'W_dec', 'b_dec'],
  makeParams: (rng) => {
    const p = randomParams(batchTopK.paramShapes(cfg), rng);
    p.threshold!.data.forEach((v, i, a) => (a[i] = Math.abs(v)));
    return p;
  },
});

describe('batchtopk: the batch-level selection and the inference threshold', () => {
  it('keeps exactly k·B latents over the batch, unevenly over rows, and they are the k·B largest', async () => {
    const rng = new Rng(4);
    const p = randomParams(batchTopK.paramShapes(cfg), rng);
    p.b_enc!.data.fill(1); // most pre-activations positive, so the selection (not the ReLU) decides
    const rows = 12;
    const x = randomTensor([rows, cfg.dIn], rng);
    const out = await batchTopK.lossAndGrads(p, x, cfg, 0, batchTopK.initTrainState(cfg), { engine: jsEngine });
    const want = batchTopK64(pre64(toParams64(p), Float64Array.from(x.data), rows), cfg.k * rows);
    expect(out.latents.data.filter((v) => v !== 0).length).toBe(cfg.k * rows);
    for (let i = 0; i < want.length; i++) expect(out.latents.data[i]).toBeCloseTo(want[i]!, 5);
    const perRow = Array.from({ length: rows }, (_, r) => out.latents.data.subarray(r * cfg.dSae, (r + 1) * cfg.dSae).filter((v) => v !== 0).length);
    expect(new Set(perRow).size).toBeGreaterThan(1); // not TopK in disguise
  });

  it('θ is set by the first batch to its smallest kept activation, then follows the running average', async () => {
    const rng = new Rng(5);
    const p = randomParams(batchTopK.paramShapes(cfg), rng);
    const state = batchTopK.initTrainState(cfg);
    const minKept = (x: Float64Array, rows: number) => {
      const f = batchTopK64(pre64(toParams64(p), x, rows), cfg.k * rows);
      return Math.min(...Array.from(f).filter((v) => v > 0));
    };
    const x1 = randomTensor([8, cfg.dIn], rng);
    const m1 = minKept(Float64Array.from(x1.data), 8);
    await batchTopK.lossAndGrads(p, x1, cfg, 0, state, { engine: jsEngine });
    expect(state.threshold).toBeCloseTo(m1, 5);
    const x2 = randomTensor([8, cfg.dIn], rng);
    const m2 = minKept(Float64Array.from(x2.data), 8);
    const out = await batchTopK.lossAndGrads(p, x2, cfg, 0, state, { engine: jsEngine });
    expect(state.threshold).toBeCloseTo(0.99 * m1 + 0.01 * m2, 5);
    expect(state.thresholdUpdates).toBe(2);
    expect(p.threshold!.data.every((v) => v === Math.fround(state.threshold))).toBe(true);
    expect(out.grads.threshold!.data.every((v) => v === 0)).toBe(true); // a buffer: the optimiser never moves it
  });

  it('AuxK on dead latents matches the float64 reference, gradients by finite differences', async () => {
    const dead: BatchTopKConfig = { ...cfg, deadTokensThreshold: 8, kAux: 4 };
    const rng = new Rng(8);
    const p = randomParams(batchTopK.paramShapes(dead), rng);
    const rows = 6;
    const x = randomTensor([rows, cfg.dIn], rng);
    const state = batchTopK.initTrainState(dead);
    state.tokensSinceFired.fill(5); // +6 tokens → every latent that does not fire in this batch is dead
    const out = await batchTopK.lossAndGrads(p, x, dead, 0, state, { engine: jsEngine });

    const x64 = Float64Array.from(x.data);
    const p0 = toParams64(p);
    const f0 = batchTopK64(pre64(p0, x64, rows), cfg.k * rows);
    const fired = new Set<number>();
    f0.forEach((v, i) => v > 0 && fired.add(i % cfg.dSae));
    const nDead = cfg.dSae - fired.size;
    expect(nDead).toBeGreaterThan(0);
    const kAux = Math.min(4, nDead);
    const scale = Math.min(nDead / 4, 1);
    const e0 = x64.map((v, i) => v - decode64(p0, f0, rows)[i]!);
    const auxLatents = (pre: Float64Array) => {
      const f = new Float64Array(pre.length);
      for (let r = 0; r < rows; r++) {
        const order = [...Array(cfg.dSae).keys()].filter((j) => !fired.has(j)).sort((a, b) => pre[r * cfg.dSae + b]! - pre[r * cfg.dSae + a]!);
        for (const j of order.slice(0, kAux)) f[r * cfg.dSae + j] = pre[r * cfg.dSae + j]!;
      }
      return f;
    };
    const loss64 = (q: Params64) =>
      trainLoss64(q, x64, rows) + (dead.auxCoefficient * scale * sq(e0, decode64(q, auxLatents(pre64(q, x64, rows)), rows, dead, false))) / rows;
    expect(out.parts.auxk).toBeGreaterThan(0);
    expect(out.loss).toBeCloseTo(loss64(p0), 5);
    const worst = gradientCheck({ params: p, grads: out.grads, loss64, names: ['W_enc', 'b_enc', 'W_dec', 'b_dec'], samples: 20 });
    for (const [name, err] of Object.entries(worst)) expect(err, name).toBeLessThan(2e-3);
  });

  it('the training state (dead counters, θ and its update count) survives export → import', () => {
    const state = { ...batchTopK.initTrainState(cfg), threshold: 0.37, thresholdUpdates: 12 };
    const back = batchTopK.importTrainState!(cfg, JSON.parse(JSON.stringify(batchTopK.exportTrainState!(state))));
    expect(back).toEqual(state);
    expect(() => batchTopK.importTrainState!(cfg, { ...batchTopK.exportTrainState!(state), thresholdUpdates: -1 })).toThrow();
  });

  it('rejects k > d_sae by field name', () => {
    expect(() => batchTopK.configSchema.parse({ dIn: 4, dSae: 8, k: 9 })).toThrow(/k must be at most d_sae/);
  });
});

describe('batchtopk: the sparse kernels agree with the dense reference path, AuxK included', () => {
  const big: BatchTopKConfig = { dIn: 32, dSae: 64, applyBDecToInput: true, k: 4, kAux: 8, auxCoefficient: 1 / 32, deadTokensThreshold: 10, auxRelu: false, auxNormalize: false, thresholdRate: 0.01 };
  for (const [engineName, engine] of testEngines)
    it(`${engineName} engine`, async () => {
      const rng = new Rng(23);
      const p = randomParams(batchTopK.paramShapes(big), rng);
      const x = randomTensor([24, big.dIn], rng);
      const state = () => ({ ...batchTopK.initTrainState(big), tokensSinceFired: new Float64Array(big.dSae).fill(100) });
      const diffs = await densePathDifferences(batchTopK, big, p, x, 0, engine, state);
      for (const [what, d] of Object.entries(diffs)) expect(d, what).toBeLessThan(1e-4);
    });
});
