import { describe, expect, it } from 'vitest';
import { Rng, createOrtEngine, jsEngine } from '@saelab/core';
import { causalAttention64 } from '@saelab/core/reference';
import {
  TransformerLM, causalAttentionBackward, causalAttentionForward, matchedMlpHidden, nextTokenTargets, parseConfig, modelStats,
  parseTransformerConfig, rotary, transformerParamCount,
} from '../src/index.js';
import { maxRelErr } from './scan-reference.js';

const randn = (n: number, seed: number, std = 1) => {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => std * rng.normal());
};

describe('causal attention (forward: core fused kernel or the row loop; backward here)', () => {
  const [B, L, H, hs] = [2, 9, 3, 4];
  const q = randn(B * L * H * hs, 1);
  const k = randn(B * L * H * hs, 2);
  const v = randn(B * L * H * hs, 3);
  const ref = causalAttention64(q, k, v, { batch: B, seqLen: L, heads: H, kvHeads: H, headSize: hs });

  it('the row loop (engines without the fused kernel) and core\'s fused ORT kernel match the float64 reference', async () => {
    expect(jsEngine.causalAttention).toBeUndefined();
    expect(maxRelErr(await causalAttentionForward(jsEngine, q, k, v, B, L, H, hs), ref)).toBeLessThan(1e-6);
    const ort = createOrtEngine({ threads: 1 });
    expect(ort.causalAttention).toBeDefined();
    expect(maxRelErr(await causalAttentionForward(ort, q, k, v, B, L, H, hs), ref)).toBeLessThan(1e-5);
  });

  it('backward matches central finite differences of Σ w ⊙ attention(q, k, v) for q, k and v', async () => {
    const w = randn(B * L * H * hs, 4);
    const loss = async () => {
      const out = await causalAttentionForward(jsEngine, q, k, v, B, L, H, hs);
      return out.reduce((s, o, i) => s + o * w[i]!, 0);
    };
    const g = causalAttentionBackward(q, k, v, w, B, L, H, hs);
    const h = 1e-2;
    for (const [name, arr, grad] of [['q', q, g.gq], ['k', k, g.gk], ['v', v, g.gv]] as const) {
      const fd = new Float64Array(arr.length);
      for (let i = 0; i < arr.length; i++) {
        const x = arr[i]!;
        arr[i] = x + h;
        const up = await loss();
        arr[i] = x - h;
        const down = await loss();
        arr[i] = x;
        fd[i] = (up - down) / (2 * h);
      }
      expect(maxRelErr(grad, fd), `∂/∂${name}`).toBeLessThan(3e-3);
    }
  });
});

describe('rotary positions', () => {
  it('are undone by the inverse rotation and make q_t·k_s depend only on t − s', () => {
    const [L, hs] = [12, 8];
    const base = randn(hs, 5);
    const other = randn(hs, 6);
    const q = new Float32Array(L * hs);
    const k = new Float32Array(L * hs);
    for (let t = 0; t < L; t++) {
      q.set(base, t * hs);
      k.set(other, t * hs);
    }
    const q0 = q.slice();
    rotary(q, 1, L, 1, hs, 10000, 1);
    rotary(k, 1, L, 1, hs, 10000, 1);
    const dot = (t: number, s: number) => q.subarray(t * hs, (t + 1) * hs).reduce((a, x, i) => a + x * k[s * hs + i]!, 0);
    expect(dot(7, 3)).toBeCloseTo(dot(5, 1), 4);
    expect(dot(11, 2)).toBeCloseTo(dot(9, 0), 4);
    expect(Math.abs(dot(7, 3) - dot(7, 0))).toBeGreaterThan(1e-3); // positions do matter
    rotary(q, 1, L, 1, hs, 10000, -1);
    expect(maxRelErr(q, q0)).toBeLessThan(1e-6);
  });
});

describe('TransformerLM', () => {
  const tiny = { vocabSize: 11, dModel: 8, nLayers: 2, nHeads: 2, mlpHidden: 6 } as const;

  it('matches an SSM\'s parameter count within 2% through the SwiGLU width', () => {
    const ssm = modelStats(parseConfig({ vocabSize: 128, dModel: 64, nLayers: 2, variant: 'longhorn-diag' })).params;
    const base = { vocabSize: 128, dModel: 64, nLayers: 2, nHeads: 1 };
    const hidden = matchedMlpHidden(base, ssm);
    expect(hidden).toBeGreaterThan(0);
    const n = transformerParamCount(parseTransformerConfig({ ...base, mlpHidden: hidden }));
    expect(Math.abs(n - ssm) / ssm).toBeLessThan(0.02);
  });

  it('backward matches per-element central differences on random and largest-gradient elements of every tensor', async () => {
    const lm = TransformerLM.create(tiny, 3, jsEngine);
    const rng = new Rng(4);
    for (const t of Object.values(lm.params)) for (let i = 0; i < t.data.length; i++) t.data[i]! += 0.3 * rng.normal();
    const [B, L] = [2, 7];
    const tokens = Int32Array.from({ length: B * L }, () => rng.int(11));
    const targets = nextTokenTargets(tokens, B, L);
    const { grads } = await lm.lossAndGrad(tokens, targets, B, L);
    const lossAt = async () => (await lm.lossAndGrad(tokens, targets, B, L)).loss;
    const h = 5e-3;
    for (const [name, p] of Object.entries(lm.params)) {
      const g = grads[name]!.data;
      let arg = 0;
      for (let i = 0; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[arg]!)) arg = i;
      expect(Math.abs(g[arg]!), `${name}: largest gradient below the finite-difference noise`).toBeGreaterThan(1e-3);
      for (const i of new Set([arg, rng.int(g.length), rng.int(g.length), rng.int(g.length)])) {
        const x = p.data[i]!;
        p.data[i] = x + h;
        const up = await lossAt();
        p.data[i] = x - h;
        const down = await lossAt();
        p.data[i] = x;
        const fd = (up - down) / (2 * h);
        expect(Math.abs(fd - g[i]!), `${name}[${i}]: fd ${fd} vs ${g[i]}`).toBeLessThan(3e-2 * Math.abs(g[i]!) + 2e-5);
      }
    }
  });

  it('gives the same logits with the fused ORT attention as with the row loop, and rejects bad input', async () => {
    const a = TransformerLM.create(tiny, 5, jsEngine);
    const b = new TransformerLM(tiny, a.params, createOrtEngine({ threads: 1 }));
    const tokens = Int32Array.from({ length: 12 }, (_, i) => i % 11);
    const la = (await a.forward(tokens, 2, 6)).logits.data;
    const lb = (await b.forward(tokens, 2, 6)).logits.data;
    expect(maxRelErr(lb, la)).toBeLessThan(1e-4);
    await expect(a.forward(Int32Array.of(0, 99), 1, 2)).rejects.toThrow(/token 99/);
    expect(() => TransformerLM.create({ ...tiny, nHeads: 3 })).toThrow(/heads of even size/);
  });
});
