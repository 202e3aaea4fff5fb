/**
 * Matryoshka BatchTopK against a float64 reference written from the equations in src/matryoshka.ts: the shared
 * conformance suite (init, encode/decode, loss and finite-difference gradients on both engines, folding, folders,
 * training-state round trip), the nested loss with AuxK on, the dense-vs-sparse paths, and an exact resume.
 */
import { type Params, Rng, SaeTrainer, cloneParams, densePathDifferences, jsEngine, recipeOptions } from '@saelab/core';
import { describeConformance } from '@saelab/core/conformance';
import { gradientCheck, type Params64, randomParams, randomTensor, testEngines, toParams64 } from '@saelab/core/testing';
import { describe, expect, it } from 'vitest';
import { type MatryoshkaConfig, levelWidths, matryoshka } from '../src/index.js';

const cfg: MatryoshkaConfig = matryoshka.configSchema.parse({ dIn: 5, dSae: 12, k: 2, groupFractions: [0.25, 0.25, 0.5], deadTokensThreshold: 1_000_000 });

/** Everything of the reference for one configuration (float64, loops written out). */
function reference(c: MatryoshkaConfig) {
  const { dIn: d, dSae: m } = c;
  const widths = levelWidths(c);
  const weights = c.groupWeights ?? widths.map(() => 1 / widths.length);
  const preacts = (p: Params64, x: Float64Array, rows: number) => {
    const out = new Float64Array(rows * m);
    for (let r = 0; r < rows; r++)
      for (let i = 0; i < m; i++) {
        let s = p.b_enc![i]!;
        for (let j = 0; j < d; j++) s += (x[r * d + j]! - (c.applyBDecToInput ? p.b_dec![j]! : 0)) * p.W_enc![j * m + i]!;
        out[r * m + i] = s;
      }
    return out;
  };
  /** BatchTopK: the k·rows largest positive pre-activations over the batch. */
  const select = (pre: Float64Array, rows: number) => {
    const ranked = Array.from(pre.entries()).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
    const f = new Float64Array(pre.length);
    for (const [i, v] of ranked.slice(0, c.k * rows)) f[i] = v;
    return f;
  };
  /** x̂ from the latents below `width` (with b_dec unless `bias` is false). */
  const decodePrefix = (p: Params64, f: Float64Array, rows: number, width: number, bias = true) => {
    const out = new Float64Array(rows * d);
    for (let r = 0; r < rows; r++)
      for (let j = 0; j < d; j++) {
        let s = bias ? p.b_dec![j]! : 0;
        for (let i = 0; i < width; i++) s += f[r * m + i]! * p.W_dec![i * d + j]!;
        out[r * d + j] = s;
      }
    return out;
  };
  const meanSq = (a: Float64Array, b: Float64Array, rows: number) => a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0) / rows;
  /** Σ_g ω_g ‖x − x̂_g‖² (mean over rows). */
  const nested = (p: Params64, x: Float64Array, rows: number, f = select(preacts(p, x, rows), rows)) =>
    widths.reduce((s, w, g) => s + weights[g]! * meanSq(x, decodePrefix(p, f, rows, w), rows), 0);
  const encode = (p: Params64, x: Float64Array, rows: number) => preacts(p, x, rows).map((v, i) => (v > Math.max(0, p.threshold![i % m]!) ? v : 0));
  return { widths, preacts, select, decodePrefix, meanSq, nested, encode };
}

const ref = reference(cfg);
const positiveThresholds = (rng: Rng): Params => {
  const p = randomParams(matryoshka.paramShapes(cfg), rng);
  p.threshold.data.forEach((v, i, a) => (a[i] = Math.abs(v))); // so the inference encoder gates
  return p;
};

// A fresh state has no dead latent, so the loss is the nested reconstruction loss alone.
describeConformance(matryoshka, {
  cfg,
  reference: { encode: ref.encode, loss: (p, x, rows) => ref.nested(p, x, rows) },
  smoothParams: ['W_enc', 'b_enc', 'W_dec', 'b_dec'],
  makeParams: positiveThresholds,
});

describe('matryoshka: config', () => {
  it('the group schedule gives level widths as dictionary_learning does (⌊f·m⌋, the rest last)', () => {
    expect(levelWidths(cfg)).toEqual([3, 6, 12]);
    expect(levelWidths(matryoshka.configSchema.parse({ dIn: 64, dSae: 512, k: 8 }))).toEqual([16, 48, 112, 240, 512]);
  });

  it('rejects fractions that do not sum to 1, empty groups, a weight list of the wrong length, k > d_sae', () => {
    const parse = (o: object) => matryoshka.configSchema.safeParse({ dIn: 5, dSae: 12, k: 2, ...o });
    expect(parse({ groupFractions: [0.5, 0.4] }).error?.issues[0]?.message).toMatch(/sum to 1/);
    expect(parse({ groupFractions: [0.05, 0.95] }).error?.issues[0]?.message).toMatch(/empty at d_sae = 12/);
    expect(parse({ groupFractions: [0.25, 0.25, 0.5], groupWeights: [1, 1] }).error?.issues[0]?.message).toMatch(/one weight per group/);
    expect(parse({ groupFractions: [0.5, 0.5], k: 13 }).error?.issues[0]?.message).toMatch(/k must be at most d_sae/);
  });
});

describe('matryoshka: the nested loss', () => {
  it('each part is its level: ω_g·‖x − x̂_g‖² with x̂_g from the first w_g latents of one batch-level selection', async () => {
    const rng = new Rng(3);
    const p = positiveThresholds(rng);
    p.b_enc.data.fill(0.8); // mostly positive pre-activations: the selection decides
    const rows = 9;
    const x = randomTensor([rows, cfg.dIn], rng);
    const out = await matryoshka.lossAndGrads(p, x, cfg, 0, matryoshka.initTrainState(cfg), { engine: jsEngine });
    const p64 = toParams64(p);
    const x64 = Float64Array.from(x.data);
    const f = ref.select(ref.preacts(p64, x64, rows), rows);
    expect(out.latents.data.filter((v) => v !== 0).length).toBe(cfg.k * rows);
    for (const [g, w] of ref.widths.entries()) {
      expect(out.parts[`mse_w${w}`], `level ${w}`).toBeCloseTo(ref.meanSq(x64, ref.decodePrefix(p64, f, rows, w), rows) / ref.widths.length, 5);
      if (g > 0) expect(out.parts[`mse_w${w}`]).not.toBeCloseTo(out.parts[`mse_w${ref.widths[g - 1]}`]!, 5);
    }
    expect(out.parts.auxk).toBe(0);
    // The full level is what the SAE reconstructs with.
    const full = ref.decodePrefix(p64, f, rows, cfg.dSae);
    for (let i = 0; i < full.length; i++) expect(out.xHat.data[i]).toBeCloseTo(full[i]!, 5);
  });

  it('with latents dead, AuxK on the full level\'s residual joins the loss and every gradient matches finite differences', async () => {
    const dead: MatryoshkaConfig = { ...cfg, deadTokensThreshold: 10, kAux: 3, groupWeights: [0.5, 0.3, 0.2] };
    const r = reference(dead);
    const rng = new Rng(6);
    const p = positiveThresholds(rng);
    const rows = 8;
    const x = randomTensor([rows, cfg.dIn], rng);
    const state = matryoshka.initTrainState(dead);
    state.tokensSinceFired.fill(4); // + 8 tokens this batch: any latent that does not fire now is dead (12 ≥ 10)
    const out = await matryoshka.lossAndGrads(p, x, dead, 0, state, { engine: jsEngine });

    const x64 = Float64Array.from(x.data);
    const p0 = toParams64(p);
    const f0 = r.select(r.preacts(p0, x64, rows), rows);
    const fired = new Set<number>();
    f0.forEach((v, i) => v > 0 && fired.add(i % cfg.dSae));
    const deadSet = [...Array(cfg.dSae).keys()].filter((j) => !fired.has(j));
    expect(deadSet.length).toBeGreaterThan(0);
    const kAux = Math.min(3, deadSet.length);
    const scale = Math.min(deadSet.length / 3, 1);
    const residual = x64.map((v, i) => v - r.decodePrefix(p0, f0, rows, cfg.dSae)[i]!); // detached
    const loss64 = (q: Params64) => {
      const pre = r.preacts(q, x64, rows);
      const aux = new Float64Array(pre.length);
      for (let row = 0; row < rows; row++) {
        const top = deadSet.map((j) => [j, pre[row * cfg.dSae + j]!] as const).sort((a, b) => b[1] - a[1]).slice(0, kAux);
        for (const [j, v] of top) aux[row * cfg.dSae + j] = v; // raw pre-activations (SAELens's AuxK)
      }
      return r.nested(q, x64, rows) + (dead.auxCoefficient * scale * r.meanSq(residual, r.decodePrefix(q, aux, rows, cfg.dSae, false), rows));
    };
    expect(out.parts.auxk).toBeGreaterThan(0);
    expect(out.loss).toBeCloseTo(loss64(p0), 5);
    const worst = gradientCheck({ params: p, grads: out.grads, loss64, names: ['W_enc', 'b_enc', 'W_dec', 'b_dec'], samples: 24 });
    for (const [name, err] of Object.entries(worst)) expect(err, name).toBeLessThan(2e-3);
    expect(out.grads.threshold.data.every((v) => v === 0)).toBe(true); // θ is a buffer
  });

  it('a level only teaches its prefix: with only the smallest level weighted, the W_dec rows beyond it get no gradient', async () => {
    // Weight only the smallest level: latents beyond it get no reconstruction gradient at all.
    const first: MatryoshkaConfig = { ...cfg, groupWeights: [1, 0, 0] };
    const rng = new Rng(8);
    const p = positiveThresholds(rng);
    p.b_enc.data.fill(0.8);
    const x = randomTensor([10, cfg.dIn], rng);
    const out = await matryoshka.lossAndGrads(p, x, first, 0, matryoshka.initTrainState(first), { engine: jsEngine });
    const [w1] = levelWidths(first);
    const rowGrad = (i: number) => out.grads.W_dec.data.subarray(i * cfg.dIn, (i + 1) * cfg.dIn).reduce((s, v) => s + Math.abs(v), 0);
    for (let i = w1!; i < cfg.dSae; i++) expect(rowGrad(i), `W_dec row ${i}`).toBe(0);
    expect([...Array(w1).keys()].some((i) => rowGrad(i) > 0)).toBe(true);
  });
});

describe('matryoshka: the sparse kernels agree with the dense reference path, AuxK included', () => {
  const big = matryoshka.configSchema.parse({ dIn: 32, dSae: 64, k: 4, kAux: 8, deadTokensThreshold: 10, groupFractions: [0.125, 0.125, 0.25, 0.5] });
  const cases = testEngines.flatMap(([engineName, engine]) => (['ts', 'wasm'] as const).map((kernels) => ({ engineName, engine, kernels })));
  it.each(cases)('$engineName engine, $kernels kernels', async ({ engine, kernels }) => {
    const rng = new Rng(31);
    const [p, x] = [randomParams(matryoshka.paramShapes(big), rng), randomTensor([24, big.dIn], rng)];
    // Latents idle for 100 tokens already: every one that does not fire in this batch is dead, so AuxK runs.
    const idle = () => ({ ...matryoshka.initTrainState(big), tokensSinceFired: new Float64Array(big.dSae).fill(100) });
    const worst = await densePathDifferences(matryoshka, big, p, x, 0, engine, idle, { kernels });
    expect(Math.max(...Object.values(worst)), JSON.stringify(worst)).toBeLessThan(1e-4);
    expect((await matryoshka.lossAndGrads(p, x, big, 0, idle(), { engine })).parts.auxk).toBeGreaterThan(0);
  });
});

describe('matryoshka: resume', () => {
  it('stopping after 7 of 15 steps and resuming from the exported state gives bit-identical parameters', async () => {
    const c = matryoshka.configSchema.parse({ dIn: 8, dSae: 24, k: 3, groupFractions: [0.25, 0.25, 0.5], deadTokensThreshold: 40 });
    const rng = new Rng(12);
    const batches = Array.from({ length: 15 }, () => randomTensor([16, c.dIn], rng));
    const options = recipeOptions(matryoshka, 15, 3);
    options.optimizer.lr = 1e-2;
    const start = matryoshka.init(c, new Rng(1));
    const straight = new SaeTrainer(matryoshka, c, cloneParams(start), options, { engine: jsEngine });
    for (const b of batches) await straight.trainStep(b);

    const first = new SaeTrainer(matryoshka, c, cloneParams(start), options, { engine: jsEngine });
    for (const b of batches.slice(0, 7)) await first.trainStep(b);
    const saved = JSON.parse(JSON.stringify({ trainer: first.exportState(), optimizer: first.optimizer.getState() }));
    const resumed = new SaeTrainer(matryoshka, c, cloneParams(first.params), options, { engine: jsEngine });
    resumed.importState(saved.trainer);
    resumed.optimizer.setState(first.optimizer.getState());
    for (const b of batches.slice(7)) await resumed.trainStep(b);

    expect(resumed.trainState.thresholdUpdates).toBe(15);
    expect(resumed.trainState.tokensSinceFired.some((t) => t > 0)).toBe(true);
    for (const name of Object.keys(matryoshka.paramShapes(c))) expect(Array.from(resumed.params[name]!.data), name).toEqual(Array.from(straight.params[name]!.data));
  });
});
