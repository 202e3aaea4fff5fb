/**
 * JumpReLU's θ update: one trainer step against a float64 reference of the whole update (STE pseudo-gradient, gradient
 * clipping, Adam with β1 = 0, then the step bound |Δθ| ≤ b·ε), and that without the bound the same step jumps θ by
 * several bandwidths.
 */
import { describe, expect, it } from 'vitest';
import { Rng, SaeTrainer, jsEngine, recipeOptions } from '@saelab/core';
import { matmulRows64, randomParams, randomTensor, toParams64 } from '@saelab/core/testing';
import { type JumpReluConfig, jumpRelu } from '../src/index.js';

const cfg: JumpReluConfig = jumpRelu.configSchema.parse({ dIn: 6, dSae: 8, bandwidth: 0.05, initialThreshold: 0.001, thresholdStepBound: 2 });

/** dθ_i = Σ_rows [−(θ/ε)K(u)·∂L/∂f − (λ/B)(1/ε)K(u)], u = (pre − θ)/ε, K = 1[|u| < ½], ∂L/∂f = (2/B)(x̂ − x)·W_dec,i. */
function thetaGrad64(p: ReturnType<typeof toParams64>, x: Float64Array, rows: number, lambda: number): Float64Array {
  const { dIn: d, dSae: m, bandwidth: eps } = cfg;
  const pre = matmulRows64(x.map((v, i) => v - p.b_dec![i % d]!), rows, p.W_enc!, d, m).map((v, i) => v + p.b_enc![i % m]!);
  const f = pre.map((v, i) => (v > p.threshold![i % m]! ? v : 0));
  const xHat = matmulRows64(f, rows, p.W_dec!, m, d).map((v, i) => v + p.b_dec![i % d]!);
  const g = new Float64Array(m);
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < m; i++) {
      const th = p.threshold![i]!;
      if (Math.abs((pre[r * m + i]! - th) / eps) >= 0.5) continue;
      let dF = 0;
      for (let j = 0; j < d; j++) dF += ((2 / rows) * (xHat[r * d + j]! - x[r * d + j]!)) * p.W_dec![i * d + j]!;
      g[i] += -(th / eps) * dF - lambda / rows / eps;
    }
  return g;
}

describe('jumprelu: the θ update', () => {
  it('one trainer step moves θ exactly as Adam(β1 = 0) on the STE gradient, clipped to ±b·ε (float64 reference)', async () => {
    const rng = new Rng(4);
    const p = randomParams(jumpRelu.paramShapes(cfg), rng);
    // Thresholds near the bulk of the pre-activations, so most latents have rows in their window.
    p.threshold!.data.forEach((_, i, a) => (a[i] = 0.2 + 0.1 * rng.uniform()));
    const rows = 64;
    const x = randomTensor([rows, cfg.dIn], rng);
    const lambda = 0.5;
    const lr = 0.4; // large on purpose: unbounded, Adam's first step moves θ by ≈ lr = 8ε > b·ε = 2ε
    const p64 = toParams64(p);
    const g = thetaGrad64(p64, Float64Array.from(x.data), rows, lambda);
    expect(cfg.thresholdStepBound).toBe(2);
    expect(g.filter((v) => v !== 0).length).toBeGreaterThan(2);

    const opts = { ...recipeOptions(jumpRelu, 1, lambda), optimizer: { ...recipeOptions(jumpRelu, 1, lambda).optimizer, lr }, gradClip: 0, lrWarmupSteps: 0, sparsityWarmupSteps: 0 };
    const trainer = new SaeTrainer(jumpRelu, cfg, p, opts, { engine: jsEngine });
    await trainer.trainStep(x);
    const { beta2, eps: adamEps } = opts.optimizer as { beta2: number; eps: number };
    for (let i = 0; i < cfg.dSae; i++) {
      // Adam, first step, β1 = 0: m̂ = g, v̂ = g², so the raw step is lr·g/(|g| + eps) (bias corrections cancel).
      const vHat = (g[i]! * g[i]! * (1 - beta2)) / (1 - beta2);
      const raw = p64.threshold![i]! - (lr * g[i]!) / (Math.sqrt(vHat) + adamEps);
      const bound = cfg.thresholdStepBound * cfg.bandwidth;
      const expected = Math.max(0, Math.min(p64.threshold![i]! + bound, Math.max(p64.threshold![i]! - bound, raw)));
      expect(p.threshold!.data[i], `θ_${i}`).toBeCloseTo(expected, 6);
      if (g[i] !== 0) expect(Math.abs(p.threshold!.data[i]! - p64.threshold![i]!)).toBeCloseTo(bound, 6); // the bound is active
    }
  });

  it('without the bound the same step jumps θ by several bandwidths (what the bound prevents)', async () => {
    const rng = new Rng(4);
    const c = { ...cfg, thresholdStepBound: 0 };
    const p = randomParams(jumpRelu.paramShapes(c), rng);
    p.threshold!.data.forEach((_, i, a) => (a[i] = 0.2 + 0.1 * rng.uniform()));
    const before = Float64Array.from(p.threshold!.data);
    const x = randomTensor([64, c.dIn], rng);
    const base = recipeOptions(jumpRelu, 1, 0.5);
    const trainer = new SaeTrainer(jumpRelu, c, p, { ...base, optimizer: { ...base.optimizer, lr: 0.2 }, gradClip: 0, lrWarmupSteps: 0, sparsityWarmupSteps: 0 }, { engine: jsEngine });
    await trainer.trainStep(x);
    const moved = Array.from(p.threshold!.data, (v, i) => Math.abs(v - before[i]!));
    expect(Math.max(...moved)).toBeGreaterThan(3 * c.bandwidth);
  });

  it('the bound state survives export → import', () => {
    const s = jumpRelu.initTrainState(cfg)!;
    s.thresholdBefore.forEach((_, i, a) => (a[i] = 0.01 * i));
    expect(jumpRelu.importTrainState!(cfg, JSON.parse(JSON.stringify(jumpRelu.exportTrainState!(s))))).toEqual(s);
  });
});
