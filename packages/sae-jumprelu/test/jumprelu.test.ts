import { densePathDifferences } from '@saelab/core';
import { testEngines } from '@saelab/core/testing';
import { describe, expect, it } from 'vitest';
import { jsEngine, Rng } from '@saelab/core';
import { describeConformance } from '@saelab/core/conformance';
import { matmulRows64, type Params64, randomParams, randomTensor, toParams64 } from '@saelab/core/testing';
import { jumpRelu, type JumpReluConfig } from '../src/index.js';

const cfg: JumpReluConfig = { dIn: 6, dSae: 9, applyBDecToInput: true, bandwidth: 0.001, initialThreshold: 0.001 };

/** Float64 reference, written from the paper: pre = (x − b_dec)W_enc + b_enc, f = pre·H(pre − θ). */
function pre64(p: Params64, x: Float64Array, rows: number, c: JumpReluConfig): Float64Array {
  const xin = x.map((v, i) => v - (c.applyBDecToInput ? p.b_dec![i % c.dIn]! : 0));
  const pre = matmulRows64(xin, rows, p.W_enc!, c.dIn, c.dSae);
  return pre.map((v, i) => v + p.b_enc![i % c.dSae]!);
}
const encode64 = (p: Params64, x: Float64Array, rows: number, c = cfg) =>
  pre64(p, x, rows, c).map((v, i) => (v > p.threshold![i % c.dSae]! ? v : 0));

function loss64(p: Params64, x: Float64Array, rows: number, lambda: number, c = cfg): number {
  const f = encode64(p, x, rows, c);
  const xHat = matmulRows64(f, rows, p.W_dec!, c.dSae, c.dIn).map((v, i) => v + p.b_dec![i % c.dIn]!);
  let mse = 0;
  for (let i = 0; i < x.length; i++) mse += (x[i]! - xHat[i]!) ** 2;
  const l0 = f.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0);
  return mse / rows + (lambda * l0) / rows;
}

const makeParams = (rng: Rng) => {
  const p = randomParams(jumpRelu.paramShapes(cfg), rng);
  p.threshold!.data.forEach((_, i, a) => (a[i] = 0.05 + 0.3 * rng.uniform()));
  return p;
};

describeConformance(jumpRelu, {
  cfg,
  reference: { encode: encode64, loss: loss64 },
  smoothParams: ['W_enc', 'b_enc', 'W_dec', 'b_dec'],
  makeParams,
  initValues: { threshold: 0.001 }, // docs/specs/sae.md: θ = 0.001
});

describe('jumprelu: straight-through pseudo-gradients for θ (paper eqs. 11–12)', () => {
  it('dθ equals Σ_rows [−(θ/ε)K((pre−θ)/ε)·∂L/∂f − (λ/B)(1/ε)K((pre−θ)/ε)] in float64', async () => {
    const wide: JumpReluConfig = { ...cfg, bandwidth: 0.4 }; // wide kernel so many entries fall inside it
    const rng = new Rng(3);
    const p = makeParams(rng);
    const rows = 11;
    const x = randomTensor([rows, cfg.dIn], rng);
    const lambda = 0.7;
    const out = await jumpRelu.lossAndGrads(p, x, wide, lambda, undefined, { engine: jsEngine });

    const p64 = toParams64(p);
    const x64 = Float64Array.from(x.data);
    const pre = pre64(p64, x64, rows, wide);
    const f = encode64(p64, x64, rows, wide);
    const xHat = matmulRows64(f, rows, p64.W_dec!, cfg.dSae, cfg.dIn).map((v, i) => v + p64.b_dec![i % cfg.dIn]!);
    // ∂L/∂f = (2/B)(x̂ − x)·W_decᵀ
    const dXHat = xHat.map((v, i) => (2 / rows) * (v - x64[i]!));
    const expected = new Float64Array(cfg.dSae);
    let inside = 0;
    for (let r = 0; r < rows; r++)
      for (let i = 0; i < cfg.dSae; i++) {
        const theta = p64.threshold![i]!;
        const u = (pre[r * cfg.dSae + i]! - theta) / wide.bandwidth;
        if (!(u > -0.5 && u < 0.5)) continue;
        inside++;
        let dF = 0;
        for (let j = 0; j < cfg.dIn; j++) dF += dXHat[r * cfg.dIn + j]! * p64.W_dec![i * cfg.dIn + j]!;
        expected[i] += -(theta / wide.bandwidth) * dF - lambda / rows / wide.bandwidth;
      }
    expect(inside).toBeGreaterThan(5);
    for (let i = 0; i < cfg.dSae; i++) expect(out.grads.threshold!.data[i]).toBeCloseTo(expected[i]!, 4);
  });

  it('the L0 term trains only θ: with no reconstruction error signal, only dθ depends on λ', async () => {
    const rng = new Rng(4);
    const p = makeParams(rng);
    const x = randomTensor([5, cfg.dIn], rng);
    const a = await jumpRelu.lossAndGrads(p, x, { ...cfg, bandwidth: 0.5 }, 0, undefined, { engine: jsEngine });
    const b = await jumpRelu.lossAndGrads(p, x, { ...cfg, bandwidth: 0.5 }, 10, undefined, { engine: jsEngine });
    for (const name of ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const) expect(b.grads[name]!.data).toEqual(a.grads[name]!.data);
    expect(b.grads.threshold!.data).not.toEqual(a.grads.threshold!.data);
  });
});

describe('jumprelu: training', () => {
  it('no shrinkage: with λ = 1 the input 1·d̂ is reconstructed exactly (the L0 penalty does not pull magnitudes)', async () => {
    const { trainOnConstantFeature } = await import('@saelab/core/testing');
    expect(await trainOnConstantFeature(jumpRelu, { ...cfg, dIn: 4, dSae: 2 }, 1)).toBeCloseTo(1, 4);
  });

  it('recovers known ground-truth features from synthetic sparse data (MMCS ≥ 0.9)', async () => {
    const { SaeTrainer, ShuffledBatchStream, estimateNormScale, meanMaxCosineSimilarity, recipeOptions, scaleRows, syntheticSparseData } =
      await import('@saelab/core');
    const dIn = 32;
    const { x, dictionary } = syntheticSparseData({ rows: 20_000, dIn, features: 48, meanActive: 3, seed: 5 });
    const scale = estimateNormScale(x);
    const xs = scaleRows(x, 1 / scale);
    const c: JumpReluConfig = { ...cfg, dIn, dSae: 96 };
    const params = jumpRelu.init(c, new Rng(1));
    const steps = 3000;
    const opts = { ...recipeOptions(jumpRelu, steps, 0.01), optimizer: { ...recipeOptions(jumpRelu, steps, 0).optimizer, lr: 2e-3 } };
    const trainer = new SaeTrainer(jumpRelu, c, params, opts, { engine: jsEngine });
    const source = { rows: 20_000, d: dIn, readRows: async (s: number, n: number) => xs.data.slice(s * dIn, (s + n) * dIn) };
    const stream = new ShuffledBatchStream(source, { batchSize: 128, seed: 3, bufferRows: 4096 });
    let last = { l0: 0, fvu: 1 };
    for (let s = 0; s < steps; s++) last = await trainer.trainStep(await stream.next());
    const mmcs = meanMaxCosineSimilarity(dictionary, params.W_dec!);
    console.log(`synthetic GT recovery: MMCS ${mmcs.toFixed(4)}, L0 ${last.l0.toFixed(2)}, batch FVU ${last.fvu.toFixed(4)}`);
    expect(last.l0).toBeLessThan(8);
    expect(mmcs).toBeGreaterThanOrEqual(0.9);
  });
});

describe('jumprelu: the sparse kernels agree with the dense reference path (θ pseudo-gradient included)', () => {
  for (const bandwidth of [0.001, 0.4])
    for (const [engineName, engine] of testEngines)
      for (const kernels of ['ts', 'wasm'] as const)
        it(`ε = ${bandwidth}, ${engineName} engine, ${kernels} kernels`, async () => {
          const big: JumpReluConfig = { dIn: 32, dSae: 64, applyBDecToInput: true, bandwidth, initialThreshold: 0.001 };
          const rng = new Rng(23);
          const p = randomParams(jumpRelu.paramShapes(big), rng);
          p.threshold!.data.forEach((_, i, a) => (a[i] = 0.3 + 0.5 * rng.uniform()));
          const diffs = await densePathDifferences(jumpRelu, big, p, randomTensor([24, big.dIn], rng), 0.7, engine, () => undefined, { kernels });
          for (const [what, d] of Object.entries(diffs)) expect(d, what).toBeLessThan(1e-4);
        });
});

describe('jumprelu: θ stays a threshold', () => {
  it('the post-step hook clamps θ < 0 to 0, and the trainer runs it after every optimiser step', async () => {
    const { SaeTrainer, recipeOptions } = await import('@saelab/core');
    const p = makeParams(new Rng(6));
    p.threshold!.data[0] = -0.3;
    p.threshold!.data[1] = 0.2;
    jumpRelu.afterOptimizerStep!(p, cfg);
    expect(p.threshold!.data[0]).toBe(0);
    expect(p.threshold!.data[1]).toBeCloseTo(0.2, 7);

    let calls = 0;
    const counted = { ...jumpRelu, afterOptimizerStep: (q: typeof p, c: JumpReluConfig) => (calls++, jumpRelu.afterOptimizerStep!(q, c)) };
    const trainer = new SaeTrainer(counted, cfg, makeParams(new Rng(7)), recipeOptions(jumpRelu, 3, 0.1), { engine: jsEngine });
    for (let s = 0; s < 3; s++) await trainer.trainStep(randomTensor([4, cfg.dIn], new Rng(s)));
    expect(calls).toBe(3);
  });
});
