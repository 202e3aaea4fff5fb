import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng, jsEngine, zeros } from '@saelab/core';
import {
  type Llama2cCheckpoint,
  type Llama2cConfig,
  encodeLlama2cCheckpoint,
  headSize,
  kvDim,
  loadLlama2cCheckpoint,
  parseLlama2cCheckpoint,
  randomLlama2cCheckpoint,
} from '../src/llama2c/checkpoint.js';
import { Llama2cModel } from '../src/llama2c/model.js';
import { generate } from '../src/generate.js';
import { haveStories, smallTokenizer, stories } from './helpers.js';

const small: Llama2cConfig = { dim: 16, hiddenDim: 24, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 40, seqLen: 12, sharedClassifier: false };

/** Float64 reference forward for one sequence, written straight from the equations (no KV cache, no GEMM). */
function referenceLogits(ck: Llama2cCheckpoint, tokens: number[]): number[][] {
  const c = ck.config;
  const w = ck.weights;
  const hs = headSize(c);
  const kv = kvDim(c);
  const mv = (W: Float32Array, x: number[], out: number) =>
    Array.from({ length: out }, (_, i) => x.reduce((s, xj, j) => s + W[i * x.length + j]! * xj, 0));
  const norm = (x: number[], g: Float32Array) => {
    const r = 1 / Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + 1e-5);
    return x.map((v, j) => g[j]! * v * r);
  };
  const rope = (v: number[], pos: number) => {
    const o = v.slice();
    for (let i = 0; i < v.length; i += 2) {
      const th = pos * Math.pow(10000, -(i % hs) / hs);
      o[i] = v[i]! * Math.cos(th) - v[i + 1]! * Math.sin(th);
      o[i + 1] = v[i]! * Math.sin(th) + v[i + 1]! * Math.cos(th);
    }
    return o;
  };
  let xs = tokens.map((t) => Array.from(w.tokenEmbedding.subarray(t * c.dim, (t + 1) * c.dim)));
  for (const L of w.layers) {
    const n = xs.map((x) => norm(x, L.rmsAtt));
    const q = n.map((x, t) => rope(mv(L.wq, x, c.dim), t));
    const k = n.map((x, t) => rope(mv(L.wk, x, kv), t));
    const v = n.map((x) => mv(L.wv, x, kv));
    const att = xs.map((_, t) => {
      const o = new Array<number>(c.dim).fill(0);
      for (let h = 0; h < c.nHeads; h++) {
        const g = Math.floor(h / (c.nHeads / c.nKvHeads)) * hs;
        const s = Array.from({ length: t + 1 }, (_, u) => {
          let d = 0;
          for (let i = 0; i < hs; i++) d += q[t]![h * hs + i]! * k[u]![g + i]!;
          return d / Math.sqrt(hs);
        });
        const m = Math.max(...s);
        const e = s.map((z) => Math.exp(z - m));
        const Z = e.reduce((a, b) => a + b, 0);
        for (let u = 0; u <= t; u++) for (let i = 0; i < hs; i++) o[h * hs + i]! += (e[u]! / Z) * v[u]![g + i]!;
      }
      return mv(L.wo, o, c.dim);
    });
    xs = xs.map((x, t) => x.map((xi, j) => xi + att[t]![j]!));
    xs = xs.map((x) => {
      const m = norm(x, L.rmsFfn);
      const a = mv(L.w1, m, c.hiddenDim);
      const b = mv(L.w3, m, c.hiddenDim);
      const f = mv(L.w2, a.map((ai, i) => (ai / (1 + Math.exp(-ai))) * b[i]!), c.dim);
      return x.map((xi, j) => xi + f[j]!);
    });
  }
  return xs.map((x) => mv(w.wcls, norm(x, w.rmsFinal), c.vocabSize));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function randomTokens(rng: Rng, n: number, vocab: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => (i === 0 ? 1 : rng.int(vocab)));
}

describe('llama2.c checkpoint loader (self-written random checkpoints)', () => {
  for (const shared of [true, false]) {
    it(`round-trips a random checkpoint (${shared ? 'shared' : 'separate'} classifier) through the file format`, () => {
      const ck = randomLlama2cCheckpoint({ ...small, sharedClassifier: shared }, 11);
      const dir = mkdtempSync(join(tmpdir(), 'l2c-'));
      writeFileSync(join(dir, 'm.bin'), encodeLlama2cCheckpoint(ck));
      const back = loadLlama2cCheckpoint(join(dir, 'm.bin'));
      expect(back.config).toEqual(ck.config);
      expect(maxAbsDiff(back.weights.wcls, ck.weights.wcls)).toBe(0);
      expect(maxAbsDiff(back.weights.layers[1]!.w2, ck.weights.layers[1]!.w2)).toBe(0);
      expect(back.weights.wcls === back.weights.tokenEmbedding || maxAbsDiff(back.weights.wcls, back.weights.tokenEmbedding) === 0).toBe(shared);
    });
  }

  it('rejects truncated files and bad headers, naming the file', () => {
    const bytes = encodeLlama2cCheckpoint(randomLlama2cCheckpoint(small, 1));
    expect(() => parseLlama2cCheckpoint(bytes.subarray(0, bytes.length - 4), 'a.bin')).toThrow(/a\.bin.*truncated/);
    const bad = bytes.slice();
    new DataView(bad.buffer).setInt32(12, 3, true); // n_heads = 3 does not divide dim 16
    expect(() => parseLlama2cCheckpoint(bad, 'b.bin')).toThrow(/b\.bin.*divisible/);
  });
});

describe('llama2.c forward pass', () => {
  const ck = randomLlama2cCheckpoint(small, 5);
  const model = new Llama2cModel(ck, { engine: jsEngine });
  const rng = new Rng(9);
  const B = 3;
  const T = small.seqLen;
  const tokens = randomTokens(rng, B * T, small.vocabSize);

  it('step() (KV cache) matches the float64 reference', () => {
    const seq = Array.from(tokens.subarray(0, T));
    const ref = referenceLogits(ck, seq);
    seq.forEach((t, pos) => expect(maxAbsDiff(model.step(t, pos), ref[pos]!)).toBeLessThan(1e-4));
  });

  it('batched run() equals the token-by-token KV-cache path, on the default (ORT) engine too', async () => {
    const viaOrt = new Llama2cModel(ck); // default engine
    for (const m of [model, viaOrt]) {
      const { logits } = await m.run(tokens, B, T);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          const step = model.step(tokens[b * T + t]!, t);
          expect(maxAbsDiff(logits!.data.subarray((b * T + t) * small.vocabSize, (b * T + t + 1) * small.vocabSize), step)).toBeLessThan(1e-4);
        }
      }
    }
  });

  it('hooks: resid_post = resid_pre + attn_out + mlp_out, resid_post(l) = resid_pre(l+1)', async () => {
    const read = ['blocks.0.hook_resid_pre', 'blocks.0.hook_attn_out', 'blocks.0.hook_mlp_out', 'blocks.0.hook_resid_post', 'blocks.1.hook_resid_pre'];
    const { acts } = await model.run(tokens, B, T, { read });
    const [pre, attn, mlp, post, next] = read.map((s) => acts[s]!.data);
    expect(acts[read[0]!]!.shape).toEqual([B * T, small.dim]);
    const sum = pre!.map((v, i) => v + attn![i]! + mlp![i]!);
    expect(maxAbsDiff(sum, post!)).toBeLessThan(1e-5);
    expect(maxAbsDiff(post!, next!)).toBe(0);
  });

  it('replacing a site with itself leaves logits unchanged; zeros change them', async () => {
    const clean = (await model.run(tokens, B, T)).logits!;
    for (const site of model.sites()) {
      const same = (await model.run(tokens, B, T, { replace: { site, fn: (a) => a } })).logits!;
      expect(maxAbsDiff(same.data, clean.data), site).toBe(0);
      const zero = (await model.run(tokens, B, T, { replace: { site, fn: (a) => zeros(a.shape) } })).logits!;
      expect(maxAbsDiff(zero.data, clean.data), site).toBeGreaterThan(1e-3);
    }
  });

  it('skipLogits stops early and returns the same activations', async () => {
    const site = 'blocks.0.hook_mlp_out';
    const full = await model.run(tokens, B, T, { read: [site] });
    const short = await model.run(tokens, B, T, { read: [site], skipLogits: true });
    expect(short.logits).toBeUndefined();
    expect(maxAbsDiff(short.acts[site]!.data, full.acts[site]!.data)).toBe(0);
  });

  it('rejects bad sites, shapes and tokens clearly', async () => {
    await expect(model.run(tokens, B, T, { read: ['blocks.9.hook_resid_pre'] })).rejects.toThrow(/unknown hook site/);
    await expect(model.run(tokens, B, T + 1)).rejects.toThrow(/batch·seqLen/);
    await expect(model.run(Int32Array.of(1, 999), 1, 2)).rejects.toThrow(/outside the vocabulary/);
    await expect(model.run(tokens, B, T, { replace: { site: 'blocks.0.hook_resid_pre', fn: () => zeros([1, 1]) } })).rejects.toThrow(/shape/);
  });
});

describe('generate (random checkpoint, self-built tokenizer)', () => {
  it('forces the prompt, then samples; the output is what the KV-cache path decodes', async () => {
    const tok = smallTokenizer(4);
    const ck = randomLlama2cCheckpoint({ ...small, vocabSize: tok.vocabSize, seqLen: 24 }, 8);
    const dir = mkdtempSync(join(tmpdir(), 'gen-'));
    writeFileSync(join(dir, 'm.bin'), encodeLlama2cCheckpoint(ck));
    writeFileSync(join(dir, 't.bin'), tok.toBytes());
    const chunks: Uint8Array[] = [];
    const r = await generate({ model: join(dir, 'm.bin'), tokenizer: join(dir, 't.bin'), prompt: 'abc de', steps: 0, temperature: 0 }, (b) => chunks.push(b));
    const prompt = tok.encode('abc de');
    expect(r.tokens.slice(0, prompt.length)).toEqual(prompt);
    expect(Buffer.from(r.bytes).toString().startsWith('abc de')).toBe(true);
    expect(Buffer.concat(chunks).equals(Buffer.from(r.bytes))).toBe(true); // streamed = returned
    expect(r.bytes.at(-1)).toBe(0x0a);
    // Greedy: each sampled token is the argmax of the KV-cache logits.
    const m = new Llama2cModel(ck);
    const argmaxAt = (t: number, pos: number) => {
      const logits = m.step(t, pos);
      return logits.indexOf(Math.max(...logits));
    };
    r.tokens.slice(0, -1).forEach((t, pos) => {
      const best = argmaxAt(t, pos);
      if (pos >= prompt.length - 1) expect(r.tokens[pos + 1]).toBe(best);
    });
    // steps 0 means seq_len (24) positions: BOS + 24 tokens, unless the model chose BOS, which ends generation.
    expect(r.tokens.length).toBeLessThanOrEqual(25);
    if (r.tokens.length < 25) expect(argmaxAt(r.tokens.at(-1)!, r.tokens.length - 1)).toBe(1);
  });
});

describe.skipIf(!haveStories)('stories260K (real pretrained checkpoint)', () => {
  it('a prompt is printed and then continued', async () => {
    const r = await generate({ model: join(stories, 'stories260K.bin'), tokenizer: join(stories, 'tok512.bin'), prompt: 'Tom had a red', steps: 30, temperature: 0 });
    expect(Buffer.from(r.bytes).toString()).toMatch(/^Tom had a red\S* .+/);
  });

  it('greedy generation (temperature 0, 200 steps, empty prompt) equals greedy-200.txt byte for byte', async () => {
    const r = await generate({ model: `llama2c:${join(stories, 'stories260K.bin')}`, tokenizer: join(stories, 'tok512.bin'), steps: 200, temperature: 0 });
    const expected = readFileSync(join(stories, 'greedy-200.txt'));
    expect(Buffer.from(r.bytes).toString('latin1')).toBe(expected.toString('latin1'));
  });

  it('batched forward agrees with the KV-cache path on the real model', async () => {
    const model = Llama2cModel.load(join(stories, 'stories260K.bin'));
    const tokens = randomTokens(new Rng(3), 2 * 20, 512);
    const { logits } = await model.run(tokens, 2, 20);
    for (let t = 0; t < 20; t++) {
      const step = model.step(tokens[20 + t]!, t);
      expect(maxAbsDiff(logits!.data.subarray((20 + t) * 512, (21 + t) * 512), step)).toBeLessThan(1e-3);
    }
  });
});
