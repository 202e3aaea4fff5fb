import { densePathDifferences } from '@saelab/core';
import { testEngines } from '@saelab/core/testing';
import { describe, expect, it } from 'vitest';
import { jsEngine, Rng } from '@saelab/core';
import { describeConformance } from '@saelab/core/conformance';
import { matmulRows64, type Params64, randomParams, randomTensor } from '@saelab/core/testing';
import { jumpRelu } from '@saelab/sae-jumprelu';
import { gated, type GatedConfig } from '../src/index.js';

const cfg: GatedConfig = { dIn: 6, dSae: 9, applyBDecToInput: true };

/** π_gate and π_mag in float64, from eq. 6. */
function pis64(p: Params64, x: Float64Array, rows: number) {
  const xin = x.map((v, i) => v - p.b_dec![i % cfg.dIn]!);
  const P = matmulRows64(xin, rows, p.W_enc!, cfg.dIn, cfg.dSae);
  const gate = P.map((v, i) => v + p.b_gate![i % cfg.dSae]!);
  const mag = P.map((v, i) => v * Math.exp(p.r_mag![i % cfg.dSae]!) + p.b_mag![i % cfg.dSae]!);
  return { gate, mag };
}
function encode64(p: Params64, x: Float64Array, rows: number): Float64Array {
  const { gate, mag } = pis64(p, x, rows);
  return gate.map((g, i) => (g > 0 ? Math.max(0, mag[i]!) : 0));
}
function decode64(p: Params64, f: Float64Array, rows: number): Float64Array {
  return matmulRows64(f, rows, p.W_dec!, cfg.dSae, cfg.dIn).map((v, i) => v + p.b_dec![i % cfg.dIn]!);
}
const sq = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0);
function loss64(p: Params64, x: Float64Array, rows: number, lambda: number): number {
  const { gate } = pis64(p, x, rows);
  const gateAct = gate.map((g) => Math.max(0, g));
  const l1 = gateAct.reduce((a, b) => a + b, 0);
  return (sq(x, decode64(p, encode64(p, x, rows), rows)) + lambda * l1 + sq(x, decode64(p, gateAct, rows))) / rows;
}

// The decoder gets gradient from the main reconstruction only; the aux term's W_dec/b_dec are stop-gradient, so a
// finite-difference check of W_dec/b_dec against loss64 (which has no stop-gradient) would be wrong: check them
// against the loss without the aux term, and everything else against the full loss.
describeConformance(gated, {
  cfg,
  reference: { encode: encode64, loss: loss64 },
  smoothParams: ['W_enc', 'b_gate', 'r_mag', 'b_mag'],
});

describe('gated: stop-gradient decoder in the auxiliary loss', () => {
  it('W_dec and b_dec gradients treat the aux decoder as a frozen copy (finite differences of that loss)', async () => {
    const { gradientCheck, toParams64 } = await import('@saelab/core/testing');
    const rng = new Rng(5);
    const p = randomParams(gated.paramShapes(cfg), rng);
    const rows = 7;
    const x = randomTensor([rows, cfg.dIn], rng);
    const out = await gated.lossAndGrads(p, x, cfg, 0.3, undefined, { engine: jsEngine });
    const x64 = Float64Array.from(x.data);
    const frozen = toParams64(p); // the aux reconstruction decodes with these, whatever q is
    const lossWithFrozenAuxDecoder = (q: Params64) => {
      const { gate } = pis64(q, x64, rows);
      const gateAct = gate.map((g) => Math.max(0, g));
      const l1 = gateAct.reduce((a, b) => a + b, 0);
      return (sq(x64, decode64(q, encode64(q, x64, rows), rows)) + 0.3 * l1 + sq(x64, decode64(frozen, gateAct, rows))) / rows;
    };
    const worst = gradientCheck({ params: p, grads: out.grads, loss64: lossWithFrozenAuxDecoder, names: ['W_dec', 'b_dec'], samples: 20 });
    expect(worst.W_dec).toBeLessThan(2e-3);
    expect(worst.b_dec).toBeLessThan(2e-3);
  });
});

describe('gated ⇔ JumpReLU identity (docs/specs/sae.md)', () => {
  it('with tied weights the Gated encoder equals JumpReLU on π_mag with θ = b_mag − exp(r_mag) ⊙ b_gate', async () => {
    const rng = new Rng(9);
    const p = randomParams(gated.paramShapes(cfg), rng);
    // choose b_gate so that θ > 0 for every latent (a JumpReLU threshold is positive)
    for (let j = 0; j < cfg.dSae; j++) p.b_gate!.data[j] = (p.b_mag!.data[j]! - 0.1 - rng.uniform()) / Math.exp(p.r_mag!.data[j]!);
    const rows = 40;
    const x = randomTensor([rows, cfg.dIn], rng);
    const fGated = await gated.encode(p, x, cfg, { engine: jsEngine });

    const s = p.r_mag!.data.map(Math.exp);
    const jrParams = {
      W_enc: { data: p.W_enc!.data.map((v, i) => v * s[i % cfg.dSae]!), shape: p.W_enc!.shape },
      b_enc: p.b_mag!,
      W_dec: p.W_dec!,
      b_dec: p.b_dec!,
      threshold: { data: p.b_mag!.data.map((b, j) => b - s[j]! * p.b_gate!.data[j]!), shape: [cfg.dSae] },
    };
    const jrCfg = { ...cfg, bandwidth: 0.001, initialThreshold: 0.001 };
    const fJump = await jumpRelu.encode(jrParams, x, jrCfg, { engine: jsEngine });
    let nonzero = 0;
    for (let i = 0; i < fGated.data.length; i++) {
      expect(fGated.data[i]).toBeCloseTo(fJump.data[i]!, 5);
      if (fGated.data[i] !== 0) nonzero++;
    }
    expect(nonzero).toBeGreaterThan(10);
  });
});

describe('gated: no shrinkage (docs/specs/sae.md)', () => {
  it('with λ = 1 the input 1·d̂ is reconstructed exactly (the L1 acts on the gate, not the magnitude)', async () => {
    const { trainOnConstantFeature } = await import('@saelab/core/testing');
    expect(await trainOnConstantFeature(gated, { dIn: 4, dSae: 2, applyBDecToInput: true }, 1)).toBeCloseTo(1, 4);
  });
});

describe('gated: the sparse kernels agree with the dense reference path (gate, magnitude and aux terms)', () => {
  const big: GatedConfig = { dIn: 32, dSae: 64, applyBDecToInput: true };
  for (const [engineName, engine] of testEngines)
    for (const kernels of ['ts', 'wasm'] as const)
      it(`${engineName} engine, ${kernels} kernels`, async () => {
        const rng = new Rng(24);
        const p = randomParams(gated.paramShapes(big), rng);
        p.b_gate!.data.fill(-0.6); // gate open on about a quarter of the entries; magnitude off on some of those
        const diffs = await densePathDifferences(gated, big, p, randomTensor([24, big.dIn], rng), 0.3, engine, () => undefined, { kernels });
        for (const [what, d] of Object.entries(diffs)) expect(d, what).toBeLessThan(1e-4);
      });
});
