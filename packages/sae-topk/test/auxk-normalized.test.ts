/**
 * The default AuxK (OpenAI / dictionary_learning): ReLU'd dead pre-activations, the loss divided by the residual's
 * batch variance Σ‖e − ē‖². Checked against a float64 reference written from the formula, with finite-difference
 * gradients, for TopK and BatchTopK (which share the code), and for invariance to the input scale.
 */
import { describe, expect, it } from 'vitest';
import { Rng, jsEngine } from '@saelab/core';
import { gradientCheck, matmulRows64, type Params64, randomParams, randomTensor, toParams64 } from '@saelab/core/testing';
import { type TopKConfig, batchTopK, topK } from '../src/index.js';

const cfg: TopKConfig = topK.configSchema.parse({ dIn: 6, dSae: 10, k: 3, kAux: 4, deadTokensThreshold: 8 });

const pre64 = (p: Params64, x: Float64Array, rows: number) =>
  matmulRows64(x.map((v, i) => v - p.b_dec![i % cfg.dIn]!), rows, p.W_enc!, cfg.dIn, cfg.dSae).map((v, i) => v + p.b_enc![i % cfg.dSae]!);
/** ReLU of the k largest allowed entries of each row (float64, by sorting). */
function topKRelu64(pre: Float64Array, rows: number, k: number, allowed: (j: number) => boolean = () => true): Float64Array {
  const m = cfg.dSae;
  const f = new Float64Array(pre.length);
  for (let r = 0; r < rows; r++) {
    const order = [...Array(m).keys()].filter(allowed).sort((a, b) => pre[r * m + b]! - pre[r * m + a]!);
    for (const j of order.slice(0, k)) f[r * m + j] = Math.max(0, pre[r * m + j]!);
  }
  return f;
}
const decode64 = (p: Params64, f: Float64Array, rows: number, withBias = true) =>
  matmulRows64(f, rows, p.W_dec!, cfg.dSae, cfg.dIn).map((v, i) => v + (withBias ? p.b_dec![i % cfg.dIn]! : 0));
const sq = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0);
/** Σ_rows ‖e − ē‖², written directly: subtract the column means, square, sum. */
function centredSumSquares(e: Float64Array, rows: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) {
    let mean = 0;
    for (let r = 0; r < rows; r++) mean += e[r * d + j]! / rows;
    for (let r = 0; r < rows; r++) s += (e[r * d + j]! - mean) ** 2;
  }
  return s;
}

describe('AuxK normalised by the residual variance (OpenAI, dictionary_learning)', () => {
  it('the defaults are the OpenAI form', () => {
    expect(cfg.auxNormalize).toBe(true);
    expect(cfg.auxRelu).toBe(true);
  });

  it('TopK: value = MSE + α·Σ‖e − ê‖² / Σ‖e − ē‖² (float64 reference) and gradients match finite differences', async () => {
    const rng = new Rng(8);
    const p = randomParams(topK.paramShapes(cfg), rng);
    for (let i = 0; i < cfg.dIn; i++) for (const j of [0, 1]) p.W_enc!.data[i * cfg.dSae + j] = 0.01;
    for (const j of [0, 1]) p.b_enc!.data[j] = -3; // never fire: dead, and ReLU'd to zero in AuxK
    const rows = 6;
    const x = randomTensor([rows, cfg.dIn], rng);
    const state = topK.initTrainState(cfg);
    state.tokensSinceFired.fill(5); // +6 this batch → every latent that does not fire now is dead
    const out = await topK.lossAndGrads(p, x, cfg, 0, state, { engine: jsEngine });

    const x64 = Float64Array.from(x.data);
    const p0 = toParams64(p);
    const f0 = topKRelu64(pre64(p0, x64, rows), rows, cfg.k);
    const fired = new Set<number>();
    f0.forEach((v, i) => v > 0 && fired.add(i % cfg.dSae));
    const nDead = cfg.dSae - fired.size;
    expect(nDead).toBeGreaterThan(1);
    const kAux = Math.min(cfg.kAux!, nDead);
    const e0 = x64.map((v, i) => v - decode64(p0, f0, rows)[i]!); // the detached residual
    const denom = centredSumSquares(e0, rows, cfg.dIn); // a constant of the loss (e is detached)
    const loss64 = (q: Params64) => {
      const fAux = topKRelu64(pre64(q, x64, rows), rows, kAux, (j) => !fired.has(j));
      return sq(x64, decode64(q, topKRelu64(pre64(q, x64, rows), rows, cfg.k), rows)) / rows + (cfg.auxCoefficient * sq(e0, decode64(q, fAux, rows, false))) / denom;
    };
    expect(out.parts.auxk).toBeGreaterThan(0);
    expect(out.parts.auxk).toBeCloseTo(loss64(p0) - sq(x64, decode64(p0, f0, rows)) / rows, 6);
    expect(out.loss).toBeCloseTo(loss64(p0), 6);
    const worst = gradientCheck({ params: p, grads: out.grads, loss64, names: ['W_enc', 'b_enc', 'W_dec', 'b_dec'], samples: 20 });
    for (const [name, err] of Object.entries(worst)) expect(err, name).toBeLessThan(2e-3);
    expect(Math.abs(out.grads.b_enc!.data[0]!) + Math.abs(out.grads.b_enc!.data[1]!)).toBe(0); // ReLU'd: no gradient
  });

  it('is scale-free: scaling x (and the SAE with it) by s leaves AuxK unchanged, while the SAELens form scales by s²', async () => {
    const c1 = { ...cfg, k: 1 }; // 3 rows × k 1: at least 7 of the 10 latents are dead
    const rng = new Rng(3);
    const p = randomParams(topK.paramShapes(c1), rng);
    const x = randomTensor([3, c1.dIn], rng);
    const s = 7;
    const scaled = (q: typeof p) => ({ ...q, b_dec: { ...q.b_dec!, data: q.b_dec!.data.map((v) => v * s) }, b_enc: { ...q.b_enc!, data: q.b_enc!.data.map((v) => v * s) } });
    const xs = { ...x, data: x.data.map((v) => v * s) };
    const aux = async (c: TopKConfig, q: typeof p, xx: typeof x) => {
      const st = topK.initTrainState(c);
      st.tokensSinceFired.fill(100);
      return (await topK.lossAndGrads(q, xx, c, 0, st, { engine: jsEngine })).parts.auxk!;
    };
    const a1 = await aux(c1, p, x);
    expect(a1).toBeGreaterThan(0);
    expect(await aux(c1, scaled(p), xs)).toBeCloseTo(a1, 5);
    const saelens = { ...c1, auxNormalize: false, auxRelu: false };
    const b1 = await aux(saelens, p, x);
    expect((await aux(saelens, scaled(p), xs)) / b1).toBeCloseTo(s * s, 3);
  });

  it('BatchTopK shares it: its AuxK on the same dead latents has the normalised value', async () => {
    const bcfg = batchTopK.configSchema.parse({ dIn: 6, dSae: 10, k: 3, kAux: 4, deadTokensThreshold: 8 });
    const rng = new Rng(5);
    const p = randomParams(batchTopK.paramShapes(bcfg), rng);
    const rows = 6;
    const x = randomTensor([rows, bcfg.dIn], rng);
    // With a zero W_dec, x̂ = b_dec and ê = 0, so AuxK = α·Σ‖e‖² / Σ‖e − ē‖² exactly.
    const p0 = { ...p, W_dec: { ...p.W_dec, data: new Float32Array(p.W_dec.data.length) } } as typeof p;
    const st0 = batchTopK.initTrainState(bcfg);
    st0.tokensSinceFired.fill(5);
    const out0 = await batchTopK.lossAndGrads(p0, x, bcfg, 0, st0, { engine: jsEngine });
    const x64 = Float64Array.from(x.data);
    const e = x64.map((v, i) => v - p.b_dec!.data[i % bcfg.dIn]!); // x̂ = b_dec when W_dec = 0
    const expected = (bcfg.auxCoefficient * e.reduce((s2, v) => s2 + v * v, 0)) / centredSumSquares(e, rows, bcfg.dIn);
    expect(out0.parts.auxk).toBeGreaterThan(bcfg.auxCoefficient); // Σ‖e‖² > Σ‖e − ē‖² (b_dec ≠ mean)
    expect(out0.parts.auxk).toBeCloseTo(expected, 6);
  });
});
