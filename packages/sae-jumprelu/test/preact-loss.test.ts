/**
 * The pre-activation loss for dead latents (Anthropic, January 2025; SAELens `pre_act_loss_coefficient`):
 * (c/B) Σ_rows Σ_{i dead} ReLU(θ_i − pre_ri), against a float64 reference, with finite-difference gradients for the
 * smooth parameters and the exact θ gradient (+c/B per row below θ of a dead latent), and only dead latents affected.
 */
import { describe, expect, it } from 'vitest';
import { Rng, jsEngine } from '@saelab/core';
import { gradientCheck, matmulRows64, type Params64, randomParams, randomTensor, toParams64 } from '@saelab/core/testing';
import { type JumpReluConfig, jumpRelu } from '../src/index.js';

const cfg: JumpReluConfig = jumpRelu.configSchema.parse({ dIn: 6, dSae: 10, bandwidth: 0.001, preActCoefficient: 0.3, deadTokensThreshold: 8 });

const pre64 = (p: Params64, x: Float64Array, rows: number) =>
  matmulRows64(x.map((v, i) => v - p.b_dec![i % cfg.dIn]!), rows, p.W_enc!, cfg.dIn, cfg.dSae).map((v, i) => v + p.b_enc![i % cfg.dSae]!);

describe('jumprelu: the pre-activation loss on dead latents', () => {
  it('matches (c/B) Σ ReLU(θ − pre) over dead latents in float64; gradients by finite differences, θ exactly', async () => {
    const rng = new Rng(6);
    const p = randomParams(jumpRelu.paramShapes(cfg), rng);
    p.threshold!.data.fill(0.5);
    for (const j of [0, 1, 2]) p.b_enc!.data[j] = -4; // never above θ on these rows: they will count as dead
    const rows = 5;
    const x = randomTensor([rows, cfg.dIn], rng);
    const state = jumpRelu.initTrainState(cfg)!;
    state.tokensSinceFired.fill(4); // +5 tokens this batch → every latent that does not fire now is dead (9 ≥ 8)
    const out = await jumpRelu.lossAndGrads(p, x, cfg, 0, state, { engine: jsEngine });

    const x64 = Float64Array.from(x.data);
    const p0 = toParams64(p);
    const pre0 = pre64(p0, x64, rows);
    const firedNow = new Set<number>();
    pre0.forEach((v, i) => v > p0.threshold![i % cfg.dSae]! && firedNow.add(i % cfg.dSae));
    const dead = [...Array(cfg.dSae).keys()].filter((j) => !firedNow.has(j));
    expect(dead).toEqual(expect.arrayContaining([0, 1, 2]));
    for (let j = 0; j < cfg.dSae; j++) expect(state.tokensSinceFired[j]).toBe(firedNow.has(j) ? 0 : 9);
    const preAct64 = (q: Params64) => {
      const pre = pre64(q, x64, rows);
      let s = 0;
      for (let r = 0; r < rows; r++) for (const j of dead) s += Math.max(0, q.threshold![j]! - pre[r * cfg.dSae + j]!);
      return (cfg.preActCoefficient * s) / rows;
    };
    expect(out.parts.preAct).toBeCloseTo(preAct64(p0), 6);
    // Finite differences of the pre-activation term alone, against the gradient minus the λ = 0 run without it.
    const without = await jumpRelu.lossAndGrads(p, x, { ...cfg, preActCoefficient: 0 }, 0, jumpRelu.initTrainState(cfg)!, { engine: jsEngine });
    const diff = Object.fromEntries(
      (['W_enc', 'b_enc', 'b_dec'] as const).map((n) => [n, { ...out.grads[n], data: out.grads[n].data.map((v, i) => v - without.grads[n].data[i]!) }]),
    );
    const worst = gradientCheck({ params: p, grads: diff, loss64: preAct64, names: ['W_enc', 'b_enc', 'b_dec'], samples: 20 });
    for (const [name, err] of Object.entries(worst)) expect(err, name).toBeLessThan(2e-3);
    // θ: +c/B for each row below θ, dead latents only.
    for (let j = 0; j < cfg.dSae; j++) {
      const below = dead.includes(j) ? Array.from({ length: rows }, (_, r) => pre0[r * cfg.dSae + j]! < 0.5).filter(Boolean).length : 0;
      expect(out.grads.threshold!.data[j]! - without.grads.threshold!.data[j]!, `θ_${j}`).toBeCloseTo((cfg.preActCoefficient * below) / rows, 6);
    }
  });

  it('is off by default and leaves the loss unchanged', async () => {
    const c0 = jumpRelu.configSchema.parse({ dIn: 6, dSae: 10 });
    expect(c0.preActCoefficient).toBe(0);
    const rng = new Rng(2);
    const p = randomParams(jumpRelu.paramShapes(c0), rng);
    const x = randomTensor([4, 6], rng);
    const st = jumpRelu.initTrainState(c0)!;
    st.tokensSinceFired.fill(1e9);
    const out = await jumpRelu.lossAndGrads(p, x, c0, 0.1, st, { engine: jsEngine });
    expect(out.parts.preAct).toBeUndefined();
  });
});
