import { Rng, densePathDifferences } from '@saelab/core';
import { randomParams, randomTensor, testEngines } from '@saelab/core/testing';
import { describeConformance } from '@saelab/core/conformance';
import { matmulRows64, type Params64 } from '@saelab/core/testing';
import { relu, type ReluConfig } from '../src/index.js';

/** Float64 reference from the April-update equations. */
function encode64(p: Params64, x: Float64Array, rows: number, c: ReluConfig): Float64Array {
  const xin = x.map((v, i) => v - (c.applyBDecToInput ? p.b_dec![i % c.dIn]! : 0));
  return matmulRows64(xin, rows, p.W_enc!, c.dIn, c.dSae).map((v, i) => Math.max(0, v + p.b_enc![i % c.dSae]!));
}

function loss64(p: Params64, x: Float64Array, rows: number, lambda: number, c: ReluConfig): number {
  const f = encode64(p, x, rows, c);
  const xHat = matmulRows64(f, rows, p.W_dec!, c.dSae, c.dIn).map((v, i) => v + p.b_dec![i % c.dIn]!);
  let mse = 0;
  for (let i = 0; i < x.length; i++) mse += (x[i]! - xHat[i]!) ** 2;
  let l1 = 0;
  for (let i = 0; i < c.dSae; i++) {
    let n2 = 0;
    for (let j = 0; j < c.dIn; j++) n2 += p.W_dec![i * c.dIn + j]! ** 2;
    const w = c.l1Penalty === 'plain' ? 1 : Math.sqrt(n2);
    for (let r = 0; r < rows; r++) l1 += f[r * c.dSae + i]! * w;
  }
  return mse / rows + (lambda * l1) / rows;
}

for (const l1Penalty of ['decoder-norm-weighted', 'plain'] as const) {
  const cfg: ReluConfig = { dIn: 6, dSae: 9, applyBDecToInput: true, l1Penalty, decoderInitNorm: 0.1 };
  describeConformance(relu, {
    cfg,
    reference: { encode: (p, x, r) => encode64(p, x, r, cfg), loss: (p, x, r, l) => loss64(p, x, r, l, cfg) },
    smoothParams: ['W_enc', 'b_enc', 'W_dec', 'b_dec'],
    initDecoderNorm: l1Penalty === 'plain' ? 1 : 0.1, // docs/specs/sae.md: the April recipe's 0.1; unit rows with the plain L1
  });
}
const noBDec: ReluConfig = { dIn: 5, dSae: 7, applyBDecToInput: false, l1Penalty: 'decoder-norm-weighted', decoderInitNorm: 0.1 };
describeConformance(relu, {
  cfg: noBDec,
  reference: { encode: (p, x, r) => encode64(p, x, r, noBDec), loss: (p, x, r, l) => loss64(p, x, r, l, noBDec) },
  smoothParams: ['W_enc', 'b_enc', 'W_dec', 'b_dec'],
  initDecoderNorm: 0.1,
});

import { describe, expect, it } from 'vitest';
import { trainOnConstantFeature } from '@saelab/core/testing';

describe('relu: shrinkage (docs/specs/sae.md)', () => {
  it('with λ = 1 the L1 penalty shrinks the reconstruction of 1·d̂ below 1, to the optimum 1 − λ/2', async () => {
    // One feature at magnitude g along d̂: loss (1 − g)² + λg is minimised at g = 1 − λ/2.
    const g = await trainOnConstantFeature(relu, { dIn: 4, dSae: 2, applyBDecToInput: true, l1Penalty: 'decoder-norm-weighted', decoderInitNorm: 0.1 }, 1);
    expect(g).toBeLessThan(0.9);
    expect(g).toBeCloseTo(0.5, 2);
  });
});

describe('relu: the sparse kernels agree with the dense reference path (loss, x̂, latents, every gradient)', () => {
  const big: ReluConfig = { dIn: 32, dSae: 64, applyBDecToInput: true, l1Penalty: 'decoder-norm-weighted', decoderInitNorm: 0.1 };
  for (const [engineName, engine] of testEngines)
    for (const kernels of ['ts', 'wasm'] as const)
      it(`${engineName} engine, ${kernels} kernels`, async () => {
        const rng = new Rng(21);
        const p = randomParams(relu.paramShapes(big), rng);
        p.b_enc!.data.fill(-0.6); // about a quarter of the latents active
        const diffs = await densePathDifferences(relu, big, p, randomTensor([24, big.dIn], rng), 0.3, engine, () => undefined, { kernels });
        for (const [what, d] of Object.entries(diffs)) expect(d, what).toBeLessThan(1e-4);
      });
});
