/**
 * The conformance suite every SAE architecture must pass (docs/specs/sae.md, "Conformance tests"). Each `sae-*` package
 * calls `describeConformance` with its architecture and a float64 reference written from the paper's equations;
 * architecture-specific checks (STE formulas, identities, shrinkage) live beside it in the package's own tests.
 */
import { describe, expect, it } from 'vitest';
import type { GemmEngine } from '../gemm.js';
import { Rng } from '../rng.js';
import type { BaseSaeConfig, SaeArchitecture } from './contract.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSaeAs, saveSae } from './folder.js';
import { foldInputScale } from './ops.js';
import type { Params, Tensor } from '../tensor.js';
import { gradientCheck, type Params64, randomParams, randomTensor, testEngines, toParams64 } from '../testing.js';

export interface Reference64 {
  /** Latents f for inputs x (row-major [rows, dSae]). */
  encode(p: Params64, x: Float64Array, rows: number): Float64Array;
  /** The full training loss (mean over rows) at sparsity coefficient λ, as the paper writes it. */
  loss(p: Params64, x: Float64Array, rows: number, lambda: number): number;
}

export interface ConformanceOptions<C extends BaseSaeConfig> {
  cfg: C;
  reference: Reference64;
  /** Parameters whose gradient is an ordinary derivative (checked by finite differences). */
  smoothParams: string[];
  /** Random parameters for the checks (default: N(0, 0.3²) per tensor). */
  makeParams?: (rng: Rng) => Params;
  lambda?: number;
  rows?: number;
  /** Norm of every W_dec row at init (default 1; the ReLU April recipe uses 0.1). */
  initDecoderNorm?: number;
  /** The value every entry of a non-dictionary tensor takes at init (default 0: biases, gates, r_mag). */
  initValues?: Record<string, number>;
}

function decode64(p: Params64, f: Float64Array, rows: number, dIn: number, dSae: number): Float64Array {
  const out = new Float64Array(rows * dIn);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < dIn; j++) {
      let s = p.b_dec![j]!;
      for (let i = 0; i < dSae; i++) s += f[r * dSae + i]! * p.W_dec![i * dIn + j]!;
      out[r * dIn + j] = s;
    }
  return out;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!) / Math.max(1, Math.abs(expected[i]!)));
  expect(worst, `${what}: worst relative error`).toBeLessThan(tol);
}

export function describeConformance<C extends BaseSaeConfig, S>(arch: SaeArchitecture<C, S>, opts: ConformanceOptions<C>): void {
  const { cfg, reference } = opts;
  const rows = opts.rows ?? 7;
  const lambda = opts.lambda ?? 0.3;
  const setup = (seed: number) => {
    const rng = new Rng(seed);
    const params = opts.makeParams?.(rng) ?? randomParams(arch.paramShapes(cfg), rng);
    const x = randomTensor([rows, cfg.dIn], rng);
    return { params, x };
  };

  describe(`${arch.name}: conformance (docs/specs/sae.md)`, () => {
    it('init (docs/specs/sae.md): shapes match paramShapes, W_enc = W_decᵀ, W_dec rows of the recipe norm, other tensors constant', () => {
      const p = arch.init(cfg, new Rng(1));
      for (const [name, shape] of Object.entries(arch.paramShapes(cfg))) expect(p[name]?.shape, name).toEqual(shape);
      const { dIn, dSae } = cfg;
      for (let i = 0; i < dSae; i++)
        for (let j = 0; j < dIn; j++) expect(p.W_enc!.data[j * dSae + i]).toBe(p.W_dec!.data[i * dIn + j]);
      const norm = opts.initDecoderNorm ?? 1;
      for (let i = 0; i < dSae; i++) expect(Math.hypot(...p.W_dec!.data.subarray(i * dIn, (i + 1) * dIn)), `‖W_dec[${i}]‖`).toBeCloseTo(norm, 5);
      for (const name of Object.keys(p).filter((n) => n !== 'W_enc' && n !== 'W_dec')) {
        const want = Math.fround(opts.initValues?.[name] ?? 0);
        expect(p[name]!.data.every((v) => v === want), `${name} = ${want} at init`).toBe(true);
      }
    });

    it('training state (if any) survives export → JSON → import, so a resumed run continues exactly', async () => {
      const { params, x } = setup(9);
      const state = arch.initTrainState(cfg);
      if (state === undefined) return;
      expect(arch.exportTrainState, 'an architecture with training state must export it').toBeDefined();
      expect(arch.importTrainState, 'an architecture with training state must import it').toBeDefined();
      await arch.lossAndGrads(params, x, cfg, lambda, state, { engine: testEngines[0]![1] as GemmEngine }); // move it off init
      const back = arch.importTrainState!(cfg, JSON.parse(JSON.stringify(arch.exportTrainState!(state))));
      expect(back).toEqual(state);
    });

    for (const [engineName, engine] of testEngines) {
      describe(`on the ${engineName} engine`, () => {
        const ctx = { engine: engine as GemmEngine };
        it('encode and decode match the float64 reference', async () => {
          const { params, x } = setup(11);
          const f = await arch.encode(params, x, cfg, ctx);
          const p64 = toParams64(params);
          const f64 = reference.encode(p64, Float64Array.from(x.data), rows);
          expectClose(f.data, f64, 1e-5, 'latents');
          const xHat = await arch.decode(params, f, cfg, ctx);
          expectClose(xHat.data, decode64(p64, Float64Array.from(f.data), rows, cfg.dIn, cfg.dSae), 1e-5, 'reconstruction');
        });

        it('loss matches the float64 reference and gradients match central finite differences', async () => {
          const { params, x } = setup(12);
          const out = await arch.lossAndGrads(params, x, cfg, lambda, arch.initTrainState(cfg), ctx);
          const x64 = Float64Array.from(x.data);
          const loss64 = (p: Params64) => reference.loss(p, x64, rows, lambda);
          const ref = loss64(toParams64(params));
          expect(Math.abs(out.loss - ref) / Math.max(1, Math.abs(ref))).toBeLessThan(1e-5);
          expect(Object.values(out.parts).reduce((a, b) => a + b, 0)).toBeCloseTo(out.loss, 6);
          const worst = gradientCheck({ params, grads: out.grads, loss64, names: opts.smoothParams, samples: 16 });
          for (const [name, err] of Object.entries(worst)) expect(err, `gradient of ${name}`).toBeLessThan(2e-3);
          for (const name of Object.keys(arch.paramShapes(cfg))) expect(out.grads[name]?.shape, `grad ${name}`).toEqual(params[name]!.shape);
        });

        it('folding the input scale C leaves encode/decode unchanged: encode(x) folded = encode(x/C) unfolded', async () => {
          const { params, x } = setup(13);
          const C = 3.7;
          const raw: Tensor = { data: x.data.map((v) => v * C), shape: x.shape };
          const folded = foldInputScale(params, C);
          const fTrain = await arch.encode(params, x, cfg, ctx);
          const fRaw = await arch.encode(folded, raw, cfg, ctx);
          expectClose(fRaw.data, fTrain.data, 1e-4, 'latents after folding');
          const xHatRaw = await arch.decode(folded, fRaw, cfg, ctx);
          const xHatTrain = await arch.decode(params, fTrain, cfg, ctx);
          expectClose(xHatRaw.data, xHatTrain.data.map((v) => v * C), 1e-4, 'reconstruction after folding');
        });
      });
    }

    it('save → load of an SAELens folder is bit-exact (weights and config)', async () => {
      const { params } = setup(14);
      const dir = await mkdtemp(join(tmpdir(), `saelab-${arch.name}-`));
      try {
        await saveSae(join(dir, 'sae'), arch, cfg, params);
        const back = await loadSaeAs(join(dir, 'sae'), arch);
        expect(back.cfg).toEqual(cfg);
        for (const name of Object.keys(arch.paramShapes(cfg))) {
          expect(back.params[name]!.shape, name).toEqual(params[name]!.shape);
          expect(Buffer.from(back.params[name]!.data.buffer, back.params[name]!.data.byteOffset, back.params[name]!.data.byteLength).equals(
            Buffer.from(params[name]!.data.buffer, params[name]!.data.byteOffset, params[name]!.data.byteLength),
          ), `${name} bytes`).toBe(true);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('SAELens config round trip keeps the architecture config', () => {
      const json = { d_in: cfg.dIn, d_sae: cfg.dSae, apply_b_dec_to_input: cfg.applyBDecToInput, ...arch.toSaelensConfig(cfg) };
      expect(arch.fromSaelensConfig(json)).toEqual(cfg);
    });
  });
}
