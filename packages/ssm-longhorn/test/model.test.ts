import { describe, expect, it } from 'vitest';
import { Rng, jsEngine, type Params, type Tensor } from '@saelab/core';
import { LonghornLM, nextTokenTargets, paramShapes, parseConfig } from '../src/model.js';
import { TRANSITIONS } from '../src/scan.js';

const tiny = (variant: (typeof TRANSITIONS)[number]) =>
  ({ vocabSize: 11, dModel: 8, nLayers: 2, dState: 4, variant, scanChunk: 3 }) as const;

function randomTokens(n: number, V: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: n }, () => rng.int(V));
}

/** Perturb parameters so that gradients are generic (D = 1, zero biases and unit norms are special points). */
function jitter(p: Params, seed: number, scale: number): void {
  const rng = new Rng(seed);
  for (const t of Object.values(p)) for (let i = 0; i < t.data.length; i++) t.data[i]! += scale * rng.normal();
}

describe.each(TRANSITIONS)('LonghornLM (%s)', (variant) => {
  it('has the official parameter names', () => {
    const names = Object.keys(paramShapes(parseConfig(tiny(variant))));
    expect(names).toContain('embedding.weight');
    expect(names).toContain('layers.1.mixer.in_proj.weight');
    expect(names).toContain('layers.0.mixer.conv1d.bias');
    expect(names).toContain(variant === 'mamba' ? 'layers.0.mixer.dt_proj.bias' : 'layers.0.mixer.dt_head.bias');
    expect(names.includes('layers.0.mixer.A_log')).toBe(variant === 'mamba');
    expect(names).toContain('norm_f.weight');
  });

  it('backward matches central finite differences along a random direction of every parameter tensor', async () => {
    const lm = LonghornLM.create(tiny(variant), 1, jsEngine);
    jitter(lm.params, 2, 0.1);
    const B = 2;
    const L = 7;
    const tokens = randomTokens(B * L, 11, 3);
    const targets = nextTokenTargets(tokens, B, L);
    const { grads } = await lm.lossAndGrad(tokens, targets, B, L);
    const rng = new Rng(4);
    const lossAt = async () => (await lm.lossAndGrad(tokens, targets, B, L)).loss;
    for (const [name, p] of Object.entries(lm.params)) {
      const v = Float32Array.from(p.data, () => rng.normal());
      const norm = Math.hypot(...v);
      for (let i = 0; i < v.length; i++) v[i]! /= norm; // unit step, so curvature error stays O(h²)
      let analytic = 0;
      for (let i = 0; i < v.length; i++) analytic += grads[name]!.data[i]! * v[i]!;
      const h = 1e-2;
      const base = p.data.slice();
      const shift = (s: number) => {
        for (let i = 0; i < v.length; i++) p.data[i] = base[i]! + s * v[i]!;
      };
      shift(h);
      const up = await lossAt();
      shift(-h);
      const down = await lossAt();
      p.data.set(base);
      const fd = (up - down) / (2 * h);
      expect(Math.abs(fd - analytic), `${name}: fd ${fd} vs analytic ${analytic}`).toBeLessThan(1e-2 * Math.abs(analytic) + 1e-4);
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
