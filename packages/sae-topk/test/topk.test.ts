import { densePathDifferences } from '@saelab/core';
import { testEngines } from '@saelab/core/testing';
import { describe, expect, it } from 'vitest';
import { jsEngine, Rng } from '@saelab/core';
import { describeConformance } from '@saelab/core/conformance';
import { gradientCheck, matmulRows64, type Params64, randomParams, randomTensor, toParams64 } from '@saelab/core/testing';
import { topK, type TopKConfig } from '../src/index.js';

const cfg: TopKConfig = { dIn: 6, dSae: 10, applyBDecToInput: true, k: 3, auxCoefficient: 1 / 32, deadTokensThreshold: 1_000_000, auxRelu: false, auxNormalize: false };

function pre64(p: Params64, x: Float64Array, rows: number): Float64Array {
  const xin = x.map((v, i) => v - p.b_dec![i % cfg.dIn]!);
  return matmulRows64(xin, rows, p.W_enc!, cfg.dIn, cfg.dSae).map((v, i) => v + p.b_enc![i % cfg.dSae]!);
}
/** (ReLU of) the k largest entries per row, by sorting (float64 reference). `allowed` restricts the candidates. */
function topKRelu64(pre: Float64Array, rows: number, k: number, allowed: (j: number) => boolean = () => true, relu = true): Float64Array {
  const m = cfg.dSae;
  const f = new Float64Array(pre.length);
  for (let r = 0; r < rows; r++) {
    const order = [...Array(m).keys()].filter(allowed).sort((a, b) => pre[r * m + b]! - pre[r * m + a]!);
    for (const j of order.slice(0, k)) f[r * m + j] = relu ? Math.max(0, pre[r * m + j]!) : pre[r * m + j]!;
  }
  return f;
}
const encode64 = (p: Params64, x: Float64Array, rows: number) => topKRelu64(pre64(p, x, rows), rows, cfg.k);
const decode64 = (p: Params64, f: Float64Array, rows: number, withBias = true) =>
  matmulRows64(f, rows, p.W_dec!, cfg.dSae, cfg.dIn).map((v, i) => v + (withBias ? p.b_dec![i % cfg.dIn]! : 0));
const sq = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0);

// With a fresh state nothing is dead, so the loss is the reconstruction alone.
describeConformance(topK, {
  cfg,
  reference: { encode: encode64, loss: (p, x, rows) => sq(x, decode64(p, encode64(p, x, rows), rows)) / rows },
  smoothParams: ['W_enc', 'b_enc', 'W_dec', 'b_dec'],
});

describe('topk: exact sparsity and AuxK', () => {
  it('every row has at most k non-zero latents, and exactly k when pre-activations are positive', async () => {
    const rng = new Rng(2);
    const p = randomParams(topK.paramShapes(cfg), rng);
    p.b_enc!.data.fill(50); // all pre-activations positive
    const f = await topK.encode(p, randomTensor([20, cfg.dIn], rng), cfg, { engine: jsEngine });
    for (let r = 0; r < 20; r++) expect(f.data.subarray(r * cfg.dSae, (r + 1) * cfg.dSae).filter((v) => v !== 0).length).toBe(cfg.k);
  });

  it.each([false, true])('AuxK (auxRelu: %s) matches the float64 reference (dead = not fired for N_dead tokens) and its gradients match finite differences', async (auxRelu) => {
    const dead: TopKConfig = { ...cfg, deadTokensThreshold: 8, kAux: 4, auxRelu };
    const rng = new Rng(8);
    const p = randomParams(topK.paramShapes(dead), rng);
    // Push two latents far negative: they can never fire, so they are dead, and among the dead they compete with
    // negative pre-activations — kept by the raw AuxK (gradient), dropped by the ReLU one.
    for (let i = 0; i < cfg.dIn; i++) for (const j of [0, 1]) p.W_enc!.data[i * cfg.dSae + j] = 0.01;
    for (const j of [0, 1]) p.b_enc!.data[j] = -3;
    const rows = 6;
    const x = randomTensor([rows, cfg.dIn], rng);
    const state = topK.initTrainState(dead);
    state.tokensSinceFired.fill(5); // +6 tokens this batch → every latent that does not fire now is dead (11 ≥ 8)
    const out = await topK.lossAndGrads(p, x, dead, 0, state, { engine: jsEngine });

    const x64 = Float64Array.from(x.data);
    const p0 = toParams64(p);
    const f0 = encode64(p0, x64, rows);
    const firedNow = new Set<number>();
    f0.forEach((v, i) => v > 0 && firedNow.add(i % cfg.dSae));
    const isDead = (j: number) => !firedNow.has(j);
    const nDead = cfg.dSae - firedNow.size;
    expect(nDead).toBeGreaterThan(0);
    for (let j = 0; j < cfg.dSae; j++) expect(state.tokensSinceFired[j]).toBe(firedNow.has(j) ? 0 : 11);
    const kAux = Math.min(4, nDead);
    const scale = Math.min(nDead / 4, 1);
    const e0 = x64.map((v, i) => v - decode64(p0, f0, rows)[i]!); // detached residual
    const loss64 = (q: Params64) => {
      const f = encode64(q, x64, rows);
      const fAux = topKRelu64(pre64(q, x64, rows), rows, kAux, isDead, auxRelu);
      return sq(x64, decode64(q, f, rows)) / rows + (dead.auxCoefficient * scale * sq(e0, decode64(q, fAux, rows, false))) / rows;
    };
    expect(out.parts.auxk).toBeGreaterThan(0);
    expect(out.loss).toBeCloseTo(loss64(p0), 5);
    const worst = gradientCheck({ params: p, grads: out.grads, loss64, names: ['W_enc', 'b_enc', 'W_dec', 'b_dec'], samples: 20 });
    for (const [name, err] of Object.entries(worst)) expect(err, name).toBeLessThan(2e-3);
    // The always-negative latents learn from AuxK only when it uses raw pre-activations.
    const gDeadBias = Math.abs(out.grads.b_enc!.data[0]!) + Math.abs(out.grads.b_enc!.data[1]!);
    if (auxRelu) expect(gDeadBias).toBe(0);
    else expect(gDeadBias).toBeGreaterThan(0);
  });

  it('the dead-latent counters survive export → import (exact resume keeps AuxK on)', () => {
    const state = topK.initTrainState(cfg);
    state.tokensSinceFired.forEach((_, j, a) => (a[j] = 1000 * j + 7));
    const back = topK.importTrainState!(cfg, JSON.parse(JSON.stringify(topK.exportTrainState!(state))));
    expect(back.tokensSinceFired).toEqual(state.tokensSinceFired);
    expect(() => topK.importTrainState!(cfg, { tokensSinceFired: [1, 2] })).toThrow();
  });
});

describe('topk: no shrinkage', () => {
  it('with k = 1 the input 1·d̂ is reconstructed exactly (no L1 penalty)', async () => {
    const { trainOnConstantFeature } = await import('@saelab/core/testing');
    expect(await trainOnConstantFeature(topK, { ...cfg, dIn: 4, dSae: 2, k: 1 }, 0)).toBeCloseTo(1, 4);
  });
});

describe('topk: the sparse kernels agree with the dense reference path, AuxK included', () => {
  const big: TopKConfig = { dIn: 32, dSae: 64, applyBDecToInput: true, k: 4, kAux: 8, auxCoefficient: 1 / 32, deadTokensThreshold: 10, auxRelu: false, auxNormalize: false };
  for (const [engineName, engine] of testEngines)
    for (const kernels of ['ts', 'wasm'] as const)
      it(`${engineName} engine, ${kernels} kernels`, async () => {
        const rng = new Rng(22);
        const p = randomParams(topK.paramShapes(big), rng);
        const x = randomTensor([24, big.dIn], rng);
        // Every latent idle for 100 tokens: those that do not fire in this batch are dead, so AuxK runs.
        const state = () => ({ tokensSinceFired: new Float64Array(big.dSae).fill(100) });
        const diffs = await densePathDifferences(topK, big, p, x, 0, engine, state, { kernels });
        for (const [what, d] of Object.entries(diffs)) expect(d, what).toBeLessThan(1e-4);
        const out = await topK.lossAndGrads(p, x, big, 0, state(), { engine });
        expect(out.parts.auxk).toBeGreaterThan(0);
      });
});

describe('trainer: the dead-fraction training window', () => {
  it('marks exactly the latents that fired in the steps since the window was reset', async () => {
    const { SaeTrainer, recipeOptions, cloneParams } = await import('@saelab/core');
    const c: TopKConfig = { ...cfg, dSae: 40, k: 2 };
    const rng = new Rng(12);
    const params = topK.init(c, rng);
    const trainer = new SaeTrainer(topK, c, params, recipeOptions(topK, 10, 0, c), { engine: jsEngine });
    await trainer.trainStep(randomTensor([8, c.dIn], rng)); // fires some latents before the window
    trainer.resetFiringWindow();
    const x = randomTensor([6, c.dIn], rng);
    const before = cloneParams(params);
    await trainer.trainStep(x);
    const f = await topK.encode(before, x, c, { engine: jsEngine });
    const expected = new Set<number>();
    f.data.forEach((v, i) => v !== 0 && expected.add(i % c.dSae));
    const fired = new Set<number>();
    trainer.firedInWindow.forEach((v, i) => v && fired.add(i));
    expect(fired).toEqual(expected);
    expect(trainer.deadFractionInWindow()).toBeCloseTo(1 - expected.size / c.dSae, 12);
    // and it survives export / import (resume)
    const other = new SaeTrainer(topK, c, before, recipeOptions(topK, 10, 0, c), { engine: jsEngine });
    other.importState(JSON.parse(JSON.stringify(trainer.exportState())));
    expect(Array.from(other.firedInWindow)).toEqual(Array.from(trainer.firedInWindow));
  });
});
