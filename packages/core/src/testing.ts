/**
 * Helpers for the architecture conformance tests (imported as '@saelab/core/testing'). They hold no SAE math:
 * each test writes its own float64 reference from the paper's equations and uses these to compare.
 */
import { createOrtEngine, jsEngine, type GemmEngine } from './gemm.js';
import { finiteDifferences } from './reference.js';
import { Rng } from './rng.js';
import { type Params, type Tensor, zeros } from './tensor.js';

export type Params64 = Record<string, Float64Array>;

/** Both GEMM engines, so every conformance test runs on the plain-JS path and on onnxruntime. */
export const testEngines: ReadonlyArray<[string, GemmEngine]> = [
  ['js', jsEngine],
  ['onnxruntime', createOrtEngine({ smallThreshold: 0 })],
];

export function randomTensor(shape: number[], rng: Rng, std = 1, mean = 0): Tensor {
  const t = zeros(shape);
  rng.fillNormal(t.data, std, mean);
  return t;
}

/** Random parameters with the given shapes (N(0, std²) each). */
export function randomParams(shapes: Record<string, number[]>, rng: Rng, std = 0.3): Params {
  const p: Params = {};
  for (const [k, s] of Object.entries(shapes)) p[k] = randomTensor(s, rng, std);
  return p;
}

export function toParams64(p: Params): Params64 {
  const out: Params64 = {};
  for (const [k, v] of Object.entries(p)) out[k] = Float64Array.from(v.data);
  return out;
}

/**
 * Compares float32 analytic gradients with central finite differences of a float64 loss, at `samples` random
 * entries of each parameter. Returns the worst relative error per parameter:
 * |analytic − numeric| / max(scale, |numeric|), scale = 1e-3 · max |numeric| over the sampled entries.
 */
export function gradientCheck(opts: {
  params: Params;
  grads: Params;
  loss64: (p: Params64) => number;
  names: string[];
  samples?: number;
  seed?: number;
  h?: number;
}): Record<string, number> {
  const p64 = toParams64(opts.params);
  const rng = new Rng(opts.seed ?? 7);
  const worst: Record<string, number> = {};
  for (const name of opts.names) {
    const x = p64[name];
    const g = opts.grads[name];
    if (!x || !g) throw new Error(`gradientCheck: no parameter or gradient named ${name}`);
    const n = Math.min(opts.samples ?? 12, x.length);
    const idx = new Set<number>();
    while (idx.size < n) idx.add(rng.int(x.length));
    const numeric = finiteDifferences(() => opts.loss64(p64), x, opts.h ?? 1e-6, idx);
    let scale = 0;
    for (const v of numeric.values()) scale = Math.max(scale, Math.abs(v));
    scale = Math.max(scale * 1e-3, 1e-9);
    let w = 0;
    for (const [i, v] of numeric) w = Math.max(w, Math.abs(g.data[i]! - v) / Math.max(scale, Math.abs(v)));
    worst[name] = w;
  }
  return worst;
}

/** Float64 row-major helpers for writing references: y = x·W (+ b). */
export function matmulRows64(x: Float64Array, rows: number, W: Float64Array, inner: number, cols: number): Float64Array {
  const y = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let p = 0; p < inner; p++) {
      const v = x[r * inner + p]!;
      for (let c = 0; c < cols; c++) y[r * cols + c] += v * W[p * cols + c]!;
    }
  return y;
}

/**
 * The shrinkage experiment of docs/specs/sae.md: one true feature d̂, every input exactly 1·d̂, b_dec frozen at 0 (otherwise
 * the bias alone reconstructs a constant input). Trains with Adam and returns x̂·d̂ for the input (1 = no shrinkage).
 */
export async function trainOnConstantFeature<C extends import('./sae/contract.js').BaseSaeConfig, S>(
  arch: import('./sae/contract.js').SaeArchitecture<C, S>,
  cfg: C,
  lambda: number,
  opts: { steps?: number; lr?: number; seed?: number } = {},
): Promise<number> {
  const { SaeTrainer } = await import('./sae/trainer.js');
  const rng = new Rng(opts.seed ?? 1);
  const dHat = randomTensor([1, cfg.dIn], rng);
  const n = Math.hypot(...dHat.data);
  dHat.data.forEach((v, i, a) => (a[i] = v / n));
  const params = arch.init(cfg, rng);
  // Start with every latent pointing at the feature so the test measures shrinkage, not feature discovery.
  for (let i = 0; i < cfg.dSae; i++)
    for (let j = 0; j < cfg.dIn; j++) {
      params.W_dec!.data[i * cfg.dIn + j] = dHat.data[j]!;
      params.W_enc!.data[j * cfg.dSae + i] = dHat.data[j]!;
    }
  const steps = opts.steps ?? 1500;
  const trainer = new SaeTrainer(arch, cfg, params, {
    totalSteps: steps,
    sparsity: lambda,
    optimizer: { kind: 'adam', lr: opts.lr ?? 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, momentum: 0 },
    lrSchedule: 'constant',
    lrWarmupSteps: 0,
    sparsityWarmupSteps: 0,
    gradClip: 0,
    freeze: ['b_dec'],
  }, { engine: jsEngine });
  const batch = zeros([8, cfg.dIn]);
  for (let r = 0; r < 8; r++) batch.data.set(dHat.data, r * cfg.dIn);
  for (let s = 0; s < steps; s++) await trainer.trainStep(batch);
  const f = await arch.encode(params, dHat, cfg, { engine: jsEngine });
  const xHat = await arch.decode(params, f, cfg, { engine: jsEngine });
  return xHat.data.reduce((acc, v, j) => acc + v * dHat.data[j]!, 0);
}
