import { describe, expect, it } from 'vitest';
import { OptimizerConfig, adamScalars, adamUpdateTs, createOptimizer, type OptimizerConfigInput } from '../src/optim.js';
import { adamUpdateWasm, wasmAdamAvailable } from '../src/fast/wasm.js';
import { Rng } from '../src/rng.js';
import { type Params, zeros } from '../src/tensor.js';

const SHAPES: Record<string, number[]> = { W_enc: [7, 5], b_enc: [5], b_dec: [7] };

function randomParams(rng: Rng): Params {
  const p: Params = {};
  for (const [n, s] of Object.entries(SHAPES)) {
    const t = zeros(s);
    for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal();
    p[n] = t;
  }
  return p;
}

/** Gradients that vary in scale across elements and steps, so bias correction and ε both matter. */
function gradSequence(seed: number, steps: number): Params[] {
  const rng = new Rng(seed);
  return Array.from({ length: steps }, (_, t) => {
    const g = randomParams(rng);
    for (const ten of Object.values(g)) for (let i = 0; i < ten.data.length; i++) ten.data[i] = ten.data[i]! * 10 ** ((i % 5) - 3) * (1 + t / 3);
    return g;
  });
}

const toF64 = (p: Params) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, Float64Array.from(v.data)]));

/**
 * Float64 reference transcribed from the algorithm boxes in the PyTorch docs (torch.optim.Adam / AdamW / SGD):
 *   AdamW: θ ← θ − γλθ;  Adam/AdamW: m ← β1 m + (1−β1)g; v ← β2 v + (1−β2)g²; m̂ = m/(1−β1^t); v̂ = v/(1−β2^t);
 *          θ ← θ − γ m̂/(√v̂ + ε)
 *   SGD:   g ← g + λθ; if μ≠0: b ← (t>1 ? μb + g : g); g ← b; θ ← θ − γ g
 */
function reference(
  cfg: Required<OptimizerConfigInput>,
  p0: Params,
  grads: Params[],
  lrs: number[],
  noDecay: (n: string) => boolean,
): Record<string, Float64Array> {
  const th = toF64(p0);
  const m: Record<string, Float64Array> = {};
  const v: Record<string, Float64Array> = {};
  for (const k of Object.keys(th)) {
    m[k] = new Float64Array(th[k]!.length);
    v[k] = new Float64Array(th[k]!.length);
  }
  grads.forEach((gp, idx) => {
    const t = idx + 1;
    const lr = lrs[idx]!;
    for (const k of Object.keys(th)) {
      const wd = noDecay(k) ? 0 : cfg.weightDecay;
      const w = th[k]!;
      for (let i = 0; i < w.length; i++) {
        let g = gp[k]!.data[i]!;
        if (cfg.kind === 'sgd') {
          g = g + wd * w[i]!;
          if (cfg.momentum !== 0) {
            m[k]![i] = t > 1 ? cfg.momentum * m[k]![i]! + g : g;
            g = m[k]![i]!;
          }
          w[i] = w[i]! - lr * g;
        } else {
          if (cfg.kind === 'adamw') w[i] = w[i]! - lr * wd * w[i]!;
          m[k]![i] = cfg.beta1 * m[k]![i]! + (1 - cfg.beta1) * g;
          v[k]![i] = cfg.beta2 * v[k]![i]! + (1 - cfg.beta2) * g * g;
          const mh = m[k]![i]! / (1 - cfg.beta1 ** t);
          const vh = v[k]![i]! / (1 - cfg.beta2 ** t);
          w[i] = w[i]! - (lr * mh) / (Math.sqrt(vh) + cfg.eps);
        }
      }
    }
  });
  return th;
}

const full = (c: OptimizerConfigInput): Required<OptimizerConfigInput> => ({
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0,
  momentum: 0,
  ...c,
});

describe('optimizers match the PyTorch algorithms (float64 reference)', () => {
  const cases: { label: string; cfg: OptimizerConfigInput }[] = [
    { label: 'adam defaults', cfg: { kind: 'adam', lr: 1e-2 } },
    { label: 'adam β1=0 (JumpReLU/Gated recipe), large ε', cfg: { kind: 'adam', lr: 3e-3, beta1: 0, beta2: 0.999, eps: 1e-3 } },
    { label: 'adamw decoupled decay', cfg: { kind: 'adamw', lr: 5e-3, beta1: 0.8, beta2: 0.99, weightDecay: 0.1 } },
    { label: 'sgd plain', cfg: { kind: 'sgd', lr: 0.05 } },
    { label: 'sgd momentum + L2', cfg: { kind: 'sgd', lr: 0.02, momentum: 0.9, weightDecay: 0.01 } },
  ];
  for (const { label, cfg } of cases) {
    it(label, () => {
      const steps = 25;
      const p = randomParams(new Rng(1));
      const p0 = structuredClone(p);
      const grads = gradSequence(2, steps);
      const lrs = Array.from({ length: steps }, (_, t) => cfg.lr * (1 - t / (2 * steps)));
      const noDecay = (n: string) => n.startsWith('b_');
      const opt = createOptimizer(cfg, p, { noDecay });
      grads.forEach((g, t) => opt.step(p, g, lrs[t]));
      expect(opt.stepCount).toBe(steps);
      const ref = reference(full(cfg), p0, grads, lrs, noDecay);
      let maxMove = 0;
      for (const k of Object.keys(p)) {
        for (let i = 0; i < ref[k]!.length; i++) {
          maxMove = Math.max(maxMove, Math.abs(ref[k]![i]! - p0[k]!.data[i]!));
          expect(Math.abs(p[k]!.data[i]! - ref[k]![i]!)).toBeLessThan(1e-5 * (1 + Math.abs(ref[k]![i]!)));
        }
      }
      expect(maxMove).toBeGreaterThan(1e-3); // the comparison is not vacuous: the weights moved
    });
  }

  it('noDecay exempts the named parameters from AdamW decay (zero gradient: only decay moves weights)', () => {
    const p = randomParams(new Rng(3));
    const before = structuredClone(p);
    const g: Params = Object.fromEntries(Object.entries(p).map(([k, v]) => [k, zeros(v.shape)]));
    const opt = createOptimizer({ kind: 'adamw', lr: 0.1, weightDecay: 0.5 }, p, { noDecay: (n) => n === 'b_enc' });
    opt.step(p, g);
    expect(Array.from(p.b_enc!.data)).toEqual(Array.from(before.b_enc!.data));
    for (let i = 0; i < p.W_enc!.data.length; i++) expect(p.W_enc!.data[i]).toBeCloseTo(before.W_enc!.data[i]! * (1 - 0.1 * 0.5), 6);
  });

  it('minimises a convex quadratic', () => {
    const target = Float32Array.from({ length: 35 }, (_, i) => Math.sin(i));
    const p: Params = { w: zeros([35]) };
    const g: Params = { w: zeros([35]) };
    const opt = createOptimizer({ kind: 'adam', lr: 0.05 }, p);
    for (let t = 0; t < 600; t++) {
      for (let i = 0; i < 35; i++) g.w!.data[i] = 2 * (p.w!.data[i]! - target[i]!);
      opt.step(p, g);
    }
    for (let i = 0; i < 35; i++) expect(Math.abs(p.w!.data[i]! - target[i]!)).toBeLessThan(1e-2);
  });
});

describe('optimizer state', () => {
  for (const cfg of [
    { kind: 'adam', lr: 1e-2, beta1: 0 },
    { kind: 'adamw', lr: 1e-2, weightDecay: 0.05 },
    { kind: 'sgd', lr: 1e-2, momentum: 0.9 },
  ] as OptimizerConfigInput[]) {
    it(`${cfg.kind}: 10 steps == 5 + save/restore into a fresh optimizer + 5, bit for bit`, () => {
      const grads = gradSequence(7, 10);
      const a = randomParams(new Rng(4));
      const b = structuredClone(a);
      const optA = createOptimizer(cfg, a);
      for (const g of grads) optA.step(a, g);

      const optB = createOptimizer(cfg, b);
      for (const g of grads.slice(0, 5)) optB.step(b, g);
      const saved = optB.getState();
      const savedParams = structuredClone(b);
      // keep stepping the live optimizer: the snapshot must be a copy, unaffected by this
      for (const g of grads.slice(5, 8)) optB.step(b, g);

      const optC = createOptimizer(cfg, savedParams);
      optC.setState(saved);
      expect(optC.stepCount).toBe(5);
      for (const g of grads.slice(5)) optC.step(savedParams, g);
      for (const k of Object.keys(a)) {
        const x = a[k]!.data;
        const y = savedParams[k]!.data;
        for (let i = 0; i < x.length; i++) expect(Object.is(x[i], y[i])).toBe(true);
      }
    });
  }

  it('setState rejects a state of the wrong kind or shape', () => {
    const p = randomParams(new Rng(5));
    const adam = createOptimizer({ kind: 'adam', lr: 1e-3 }, p);
    const sgd = createOptimizer({ kind: 'sgd', lr: 1e-3, momentum: 0.5 }, p);
    expect(() => adam.setState(sgd.getState())).toThrow(/exp_avg/);
    const s = adam.getState();
    s.slots.exp_avg!.W_enc = zeros([5, 7]);
    expect(() => adam.setState(s)).toThrow(/exp_avg\.W_enc.*\[5, 7\]/);
  });
});

describe('optimizer validation', () => {
  const p = () => randomParams(new Rng(6));
  it('rejects bad configs naming the field', () => {
    expect(() => createOptimizer({ kind: 'adam', lr: 1e-3, weightDecay: 0.1 }, p())).toThrow(/weightDecay/);
    expect(() => createOptimizer({ kind: 'adam', lr: -1 }, p())).toThrow(/lr/);
    expect(() => createOptimizer({ kind: 'adam', lr: 1e-3, beta2: 1 }, p())).toThrow(/beta2/);
    expect(() => createOptimizer({ kind: 'adamw', lr: 1e-3, momentum: 0.9 }, p())).toThrow(/momentum/);
    expect(() => createOptimizer({ kind: 'rmsprop', lr: 1e-3 } as never, p())).toThrow(/kind/);
  });
  it('rejects missing or mis-shaped gradients and bad learning rates', () => {
    const params = p();
    const opt = createOptimizer({ kind: 'adam', lr: 1e-3 }, params);
    const g: Params = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, zeros(v.shape)]));
    expect(() => opt.step(params, { ...g, b_enc: undefined as never })).toThrow(/gradient 'b_enc' missing/);
    expect(() => opt.step(params, { ...g, b_enc: zeros([6]) })).toThrow(/'b_enc' expected shape \[5\]/);
    expect(() => opt.step(params, g, Number.NaN)).toThrow(/learning rate/);
    expect(opt.stepCount).toBe(0);
  });
});

describe('Adam WebAssembly kernel', () => {
  it.skipIf(!wasmAdamAvailable())('equals the TypeScript loop bit for bit (odd lengths, chunk edges, β1 = 0, AdamW, extreme gradients)', () => {
    const rng = new Rng(11);
    const cases: [number, OptimizerConfigInput, number][] = [
      [1, { kind: 'adam', lr: 1e-3 }, 0],
      [3, { kind: 'adam', lr: 1e-3, beta1: 0 }, 0],
      [5, { kind: 'adamw', lr: 3e-4, weightDecay: 0.1 }, 0.1],
      [(1 << 14) + 3, { kind: 'adam', lr: 2e-4 }, 0],
      [3 * (1 << 14) - 1, { kind: 'adamw', lr: 7e-5, beta1: 0, beta2: 0.99, eps: 1e-6, weightDecay: 0.01 }, 0.01],
    ];
    for (const [n, cfgIn, wd] of cases) {
      const cfg = OptimizerConfig.parse(cfgIn);
      const w = Float32Array.from({ length: n }, () => rng.normal());
      const m = new Float32Array(n);
      const v = new Float32Array(n);
      const [w2, m2, v2] = [w.slice(), m.slice(), v.slice()];
      for (let t = 1; t <= 4; t++) {
        // gradients over 12 decades, exact zeros and subnormal-sized values, so ε and rounding both matter
        const g = Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 0 : rng.normal() * 10 ** ((i % 13) - 8)));
        if (n > 2) g[1] = 1e-40;
        const s = adamScalars(cfg.lr / t, cfg, wd, t);
        adamUpdateTs(w, g, m, v, s);
        adamUpdateWasm(w2, g, m2, v2, s);
      }
      for (const [a, b, what] of [[w, w2, 'w'], [m, m2, 'm'], [v, v2, 'v']] as const) {
        expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer)), `${what}, n = ${n}`).toBe(true);
      }
    }
  });

  it.skipIf(!wasmAdamAvailable())('adamUpdateWasm rejects arrays of different lengths', () => {
    const s = adamScalars(1e-3, OptimizerConfig.parse({ kind: 'adam', lr: 1e-3 }), 0, 1);
    expect(() => adamUpdateWasm(new Float32Array(4), new Float32Array(3), new Float32Array(4), new Float32Array(4), s)).toThrow(/lengths 4, 3/);
  });
});
