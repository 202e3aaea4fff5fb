import { describe, expect, it, onTestFinished } from 'vitest';
import { Rng, jsEngine, type Params, type Tensor } from '@saelab/core';
import { LonghornLM, nextTokenTargets, paramShapes, parseConfig } from '../src/model.js';
import { TRANSITIONS } from '../src/scan.js';
import { dtName, isHeaded, setSimdKernels } from '../src/index.js';

const tiny = (variant: (typeof TRANSITIONS)[number]) =>
  ({ vocabSize: 11, dModel: 8, nLayers: 2, dState: 4, variant, scanChunk: 3, headDim: 4 }) as const; // 4 heads where headed

function randomTokens(n: number, V: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: n }, () => rng.int(V));
}

/** Perturb parameters so that gradients are generic (D = 1, zero biases and unit norms are special points). */
function jitter(p: Params, seed: number, scale: number | ((name: string) => number)): void {
  const rng = new Rng(seed);
  for (const [name, t] of Object.entries(p)) {
    const s = typeof scale === 'number' ? scale : scale(name);
    for (let i = 0; i < t.data.length; i++) t.data[i]! += s * rng.normal();
  }
}

describe.each(TRANSITIONS)('LonghornLM (%s)', (variant) => {
  it('has the official parameter names', () => {
    const names = Object.keys(paramShapes(parseConfig(tiny(variant))));
    expect(names).toContain('embedding.weight');
    expect(names).toContain('layers.1.mixer.in_proj.weight');
    expect(names).toContain('layers.0.mixer.conv1d.bias');
    const coef = { 'longhorn-diag': 'dt_head', 'longhorn-exact': 'dt_head', mamba: 'dt_proj', mamba2: 'dt_proj', deltanet: 'beta_proj', 'gated-deltanet': 'beta_proj' }[variant];
    expect(names).toContain(`layers.0.mixer.${coef}.bias`);
    expect(names.includes('layers.0.mixer.A_log')).toBe(variant === 'mamba' || variant === 'mamba2' || variant === 'gated-deltanet');
    expect(names.includes('layers.0.mixer.a_proj.weight')).toBe(variant === 'gated-deltanet');
    // head-tied variants: one coefficient (and one A_log) per head of head_dim 4 channels → 16 / 4 = 4 heads
    const shapes = paramShapes(parseConfig(tiny(variant)));
    const perHead = variant === 'mamba2' || variant === 'deltanet' || variant === 'gated-deltanet';
    expect(shapes[`layers.0.mixer.${coef}.bias`]).toEqual([perHead ? 4 : 16]);
    if (variant === 'mamba2' || variant === 'gated-deltanet') expect(shapes['layers.0.mixer.A_log']).toEqual([4]);
    expect(names).toContain('norm_f.weight');
  });

  /**
   * Directional derivatives along the gradient itself (the direction of largest change, so a check is never
   * vacuous), one per parameter tensor and one per block of a packed tensor — in_proj's [x; z] rows and x_proj's
   * [δ; k; q] rows — so a block whose gradient went missing fails the non-vanishing check instead of hiding in the
   * rest. The Δ / β path (x_proj, dt_*) is perturbed further from init: near init its gradients are ~1e-5, below what
   * float32 central differences resolve.
   */
  it.each([true, false])('backward matches central finite differences for every parameter tensor and packed block, none vanishing (SIMD kernels: %s)', async (simd) => {
    setSimdKernels(simd);
    onTestFinished(() => setSimdKernels(true));
    const cfg = parseConfig(tiny(variant));
    const lm = LonghornLM.create(cfg, 1, jsEngine);
    // Mamba's Δ starts in [1e-3, 1e-1], where ∂loss/∂A_log ∝ Δ vanishes: centre it near softplus(0) ≈ 0.7.
    for (const [name, t] of Object.entries(lm.params)) if (name.endsWith('dt_proj.bias')) t.data.fill(0);
    // Mamba2's A ∈ [1, 16] per head decays the state to ~0 within a step at Δ ≈ 0.7 (∂/∂A_log ~1e-5): use A ≈ ½.
    if (variant === 'mamba2') for (const [name, t] of Object.entries(lm.params)) if (name.endsWith('A_log')) t.data.fill(Math.log(0.5));
    jitter(lm.params, 2, (name) => (/x_proj|dt_|beta_proj|a_proj/.test(name) ? 1 : 0.1));
    const B = 2;
    const L = 7;
    const tokens = randomTokens(B * L, 11, 3);
    const targets = nextTokenTargets(tokens, B, L);
    const { grads } = await lm.lossAndGrad(tokens, targets, B, L);
    const lossAt = async () => (await lm.lossAndGrad(tokens, targets, B, L)).loss;
    const dInner = cfg.expand * cfg.dModel;
    /** Row blocks of the packed tensors (sizes in rows), else the whole tensor. */
    const blocks = (name: string, rows: number): number[] =>
      name.endsWith('in_proj.weight') ? [dInner, dInner] : name.endsWith('x_proj.weight') ? [cfg.dtRank, cfg.dState, cfg.dState] : [rows];
    for (const [name, p] of Object.entries(lm.params)) {
      const rowLen = p.data.length / p.shape[0]!;
      let row0 = 0;
      for (const rows of blocks(name, p.shape[0]!)) {
        const [from, to] = [row0 * rowLen, (row0 + rows) * rowLen];
        row0 += rows;
        const what = `${name} rows [${from / rowLen}, ${to / rowLen})`;
        const g = grads[name]!.data.subarray(from, to);
        const analytic = Math.hypot(...g); // = ∇·v for v = g / ‖g‖
        expect(analytic, `${what}: gradient too small to check`).toBeGreaterThan(2e-4);
        const h = 1e-2;
        const base = p.data.slice();
        const shift = (s: number) => {
          for (let i = 0; i < g.length; i++) p.data[from + i] = base[from + i]! + (s * g[i]!) / analytic;
        };
        shift(h);
        const up = await lossAt();
        shift(-h);
        const down = await lossAt();
        p.data.set(base);
        const fd = (up - down) / (2 * h);
        expect(Math.abs(fd - analytic), `${what}: fd ${fd} vs analytic ${analytic}`).toBeLessThan(2e-2 * analytic + 2e-5);
      }
    }
  });

  it('the recurrent decoder gives the training-path logits token by token', async () => {
    const lm = LonghornLM.create(tiny(variant), 5, jsEngine);
    jitter(lm.params, 6, 0.05);
    const B = 2;
    const L = 9;
    const tokens = randomTokens(B * L, 11, 7);
    const { logits } = await lm.forward(tokens, B, L);
    const dec = lm.decoder(B);
    const V = 11;
    for (let t = 0; t < L; t++) {
      const step = await dec.step(Int32Array.from({ length: B }, (_, b) => tokens[b * L + t]!));
      for (let b = 0; b < B; b++) {
        for (let v = 0; v < V; v++) {
          expect(step.data[b * V + v]).toBeCloseTo(logits!.data[(b * L + t) * V + v]!, 5);
        }
      }
    }
  });
});

describe('initialisation (docs/specs/longhorn.md "The block", official code)', () => {
  const big = { vocabSize: 512, dModel: 64, nLayers: 4, dState: 16 } as const;
  const stats = (a: Float32Array) => {
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    return { mean, std: Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length), maxAbs: a.reduce((m, v) => Math.max(m, Math.abs(v)), 0) };
  };
  it.each(TRANSITIONS)('%s: embedding N(0, 0.02), D = 1, dt_rank = ceil(d_model/16), out_proj U(±1/√d_inner/√n_layer)', (variant) => {
    const lm = LonghornLM.create({ ...big, variant }, 0, jsEngine);
    const emb = stats(lm.params['embedding.weight']!.data);
    expect(Math.abs(emb.mean)).toBeLessThan(1e-3);
    expect(emb.std).toBeGreaterThan(0.0195);
    expect(emb.std).toBeLessThan(0.0205);
    const dInner = 2 * big.dModel;
    const dt = dtName(variant);
    const width = isHeaded(variant) ? dInner / 64 : dInner; // default head_dim min(64, d_inner)
    expect(lm.params[`layers.0.mixer.${dt}.weight`]!.shape).toEqual([width, Math.ceil(big.dModel / 16)]);
    expect([...lm.params['layers.2.mixer.D']!.data].every((v) => v === 1)).toBe(true);
    const out = stats(lm.params['layers.1.mixer.out_proj.weight']!.data);
    const bound = 1 / Math.sqrt(dInner) / Math.sqrt(big.nLayers);
    expect(out.maxAbs).toBeLessThanOrEqual(bound);
    expect(out.std).toBeCloseTo(bound / Math.sqrt(3), 3); // std of U(±b) = b/√3
  });
  it('Longhorn: dt_head bias 0 (β = ½ at init), no A_log', () => {
    const lm = LonghornLM.create({ ...big, variant: 'longhorn-diag' }, 0, jsEngine);
    expect([...lm.params['layers.0.mixer.dt_head.bias']!.data].every((v) => v === 0)).toBe(true);
    expect(Object.keys(lm.params).some((k) => k.includes('A_log'))).toBe(false);
  });
  it('Mamba: A_log = log(j + 1) (S4D-real A = −(j+1)), softplus(dt bias) log-uniform in [1e-3, 1e-1]', () => {
    const lm = LonghornLM.create({ ...big, variant: 'mamba' }, 0, jsEngine);
    const aLog = lm.params['layers.0.mixer.A_log']!.data;
    for (let i = 0; i < 2 * big.dModel; i++) for (let j = 0; j < big.dState; j++) expect(aLog[i * big.dState + j]).toBeCloseTo(Math.log(j + 1), 6);
    const dts = [...lm.params['layers.0.mixer.dt_proj.bias']!.data].map((b) => Math.log1p(Math.exp(b)));
    expect(Math.min(...dts)).toBeGreaterThanOrEqual(1e-3 * (1 - 1e-4));
    expect(Math.max(...dts)).toBeLessThanOrEqual(1e-1 * (1 + 1e-4));
    const logs = dts.map(Math.log10); // uniform on [−3, −1]: mean −2, std 2/√12
    expect(stats(Float32Array.from(logs)).mean).toBeCloseTo(-2, 0);
    expect(stats(Float32Array.from(logs)).std).toBeGreaterThan(0.45);
  });
});

describe('LonghornLM as a HookableLM', () => {
  it('replacing a site by its own value leaves logits unchanged; zeros change them; reads return [B·T, d]', async () => {
    const lm = LonghornLM.create(tiny('longhorn-diag'), 8, jsEngine);
    const B = 2;
    const T = 6;
    const tokens = randomTokens(B * T, 11, 9);
    expect(lm.sites()).toEqual(['blocks.0.hook_resid_pre', 'blocks.0.hook_resid_post', 'blocks.1.hook_resid_pre', 'blocks.1.hook_resid_post']);
    const site = 'blocks.1.hook_resid_pre';
    const base = await lm.run(tokens, B, T, { read: [site, 'blocks.0.hook_resid_post'] });
    expect(base.acts[site]!.shape).toEqual([B * T, 8]);
    expect(base.acts[site]!.data).toEqual(base.acts['blocks.0.hook_resid_post']!.data);
    const same = await lm.run(tokens, B, T, { replace: { site, fn: (a: Tensor) => ({ data: a.data.slice(), shape: a.shape }) } });
    expect(same.logits!.data).toEqual(base.logits!.data);
    const zeroed = await lm.run(tokens, B, T, { replace: { site, fn: (a: Tensor) => ({ data: new Float32Array(a.data.length), shape: a.shape }) } });
    let diff = 0;
    for (let i = 0; i < zeroed.logits!.data.length; i++) diff = Math.max(diff, Math.abs(zeroed.logits!.data[i]! - base.logits!.data[i]!));
    expect(diff).toBeGreaterThan(1e-3);
    const harvest = await lm.run(tokens, B, T, { read: ['blocks.0.hook_resid_post'], skipLogits: true });
    expect(harvest.logits).toBeUndefined();
    expect(harvest.acts['blocks.0.hook_resid_post']!.data).toEqual(base.acts['blocks.0.hook_resid_post']!.data);
  });

  it('rejects unknown sites, bad tokens and bad configs with specific errors', async () => {
    const lm = LonghornLM.create(tiny('mamba'), 1, jsEngine);
    await expect(lm.run(new Int32Array(4), 2, 2, { read: ['blocks.9.hook_resid_pre'] })).rejects.toThrow(/unknown site/);
    await expect(lm.run(Int32Array.from([0, 1, 2, 99]), 2, 2)).rejects.toThrow(/token 99/);
    await expect(lm.run(new Int32Array(3), 2, 2)).rejects.toThrow(/expected batch·seqLen = 4/);
    expect(() => LonghornLM.create({ ...tiny('mamba'), dModel: 0 })).toThrow();
    const p = { ...lm.params };
    delete p['layers.0.mixer.D'];
    expect(() => new LonghornLM(tiny('mamba'), p, jsEngine)).toThrow(/missing parameter 'layers.0.mixer.D'/);
  });
});
