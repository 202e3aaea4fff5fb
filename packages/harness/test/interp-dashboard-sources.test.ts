/**
 * `saelab dashboard` on every LM source the CLI accepts and on an SAE folder written elsewhere, each through
 * runDashboard with a source string (the CLI's entry point, no LM handed in):
 *  - `onnx:PATH`: a tiny ONNX LM run by the real ONNX Runtime; ONNX graphs expose no unembedding, so the pages must
 *    say there are no logit effects (and why) instead of showing empty tables;
 *  - `llama2c:PATH`: the real stories260K; the promoted / suppressed tokens on each latent page against a float64
 *    reference computed here from the decoder row, rms_final and wcls read straight from the checkpoint bytes;
 *  - a SAELens-layout folder (cfg.json + sae_weights.safetensors written byte by byte here, as sae_lens 6.x's
 *    `save_model` writes them) loaded by the dashboard itself.
 */
import { readFileSync, readdirSync, writeFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenizer } from '@saelab/activations';
import { Rng, saveSae } from '@saelab/core';
import { relu } from '@saelab/sae-relu';
import { buildTinyOnnxLm, haveStories, stories, storiesSkipMessage } from '../../activations/test/helpers.js';
import { runDashboard } from '../src/interp/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'interp-dash-src-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Text of an HTML fragment: tags dropped, the entities dashboard-html.ts's escaper writes undone. */
const text = (html: string) =>
  html
    .replace(/<[^>]*>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');

/** The `## Logit effects` section of a latent page (up to the next heading). */
const logitSection = (page: string) => {
  const m = /<h2>Logit effects[^<]*<\/h2>([\s\S]*?)<h2>/.exec(page);
  expect(m, 'the page has a logit-effects section').not.toBeNull();
  return m![1]!;
};

/** [token text, effect] rows of the promoted or suppressed table. */
const logitTable = (section: string, which: 'promoted' | 'suppressed'): [string, number][] => {
  const m = new RegExp(`<h3>${which}</h3><table>([\\s\\S]*?)</table>`).exec(section);
  expect(m, `the page has a ${which} table`).not.toBeNull();
  return [...m![1]!.matchAll(/<tr><td class="l"><code>([\s\S]*?)<\/code><\/td><td>([^<]*)<\/td><\/tr>/g)].map((r) => [text(r[1]!), Number(r[2])]);
};

// The GPT-2 tokenizer that `onnx:PATH` pairs the model with (lm-sources.ts → openSource) has 50257 ids, so the
// ONNX model's embedding needs that many rows; d stays tiny.
const GPT2_VOCAB = 50257;
const D = 8;

describe('dashboard on an ONNX LM (onnx:PATH, real ONNX Runtime session)', () => {
  const model = join(tmp, 'tiny.onnx');
  const saeDir = join(tmp, 'sae-onnx');
  const out = join(tmp, 'dash-onnx');
  let result: Awaited<ReturnType<typeof runDashboard>>;
  beforeAll(async () => {
    writeFileSync(model, buildTinyOnnxLm(GPT2_VOCAB, D, 5).bytes);
    const cfg = relu.configSchema.parse({ dIn: D, dSae: 12 });
    // The ONNX source names its sites after the graph outputs (OnnxLM's default): hidden_1 = tanh(cumsum(E[ids]) W).
    await saveSae(saeDir, relu, cfg, relu.init(cfg, new Rng(2)), { hookName: 'hidden_1' });
    result = await runDashboard({ sae: saeDir, lm: `onnx:${model}`, out, corpus: 'brown', tokens: 300, context: 16, latents: 4, quiet: true });
  });

  it('writes the folder: index, latents.json, the latent pages, with contexts', () => {
    expect(result.tokens).toBe(300);
    expect(result.pages).toBe(4);
    const index = readFileSync(join(out, 'index.html'), 'utf8');
    expect(index).toContain('Content-Security-Policy');
    const latents = JSON.parse(readFileSync(join(out, 'latents.json'), 'utf8')).latents as { id: number; frequency: number; page: boolean }[];
    expect(latents.length).toBe(12);
    expect(latents.filter((l) => l.page).length).toBe(4);
    const pages = readdirSync(join(out, 'latents'));
    expect(pages.sort()).toEqual(latents.filter((l) => l.page).map((l) => `${l.id}.html`).sort());
    for (const p of pages) {
      const html = readFileSync(join(out, 'latents', p), 'utf8');
      expect(html).toMatch(/Top [1-9]\d* activating contexts/);
      expect(html).toMatch(/data-act="/);
    }
  });

  it('has no logit effects and says why (no unembedding in an ONNX graph), with no empty tables', () => {
    for (const p of readdirSync(join(out, 'latents'))) {
      const section = logitSection(readFileSync(join(out, 'latents', p), 'utf8'));
      expect(section).not.toMatch(/<table|promoted|suppressed/);
      expect(text(section)).toMatch(/does not expose its unembedding \(ONNX\)/);
    }
  });
});

/** stories260K's header and the float offsets of rms_final and wcls, from llama2.c's export format (run.c's memory_map_weights). */
function readStoriesHead(path: string) {
  const buf = readFileSync(path);
  const h = Array.from({ length: 7 }, (_, i) => buf.readInt32LE(4 * i));
  const [dim, hidden, L, heads, kvHeads, vocabSigned, seqLen] = h as [number, number, number, number, number, number, number];
  const vocab = Math.abs(vocabSigned);
  const kv = (dim * kvHeads) / heads;
  const f = (off: number, n: number) => Float64Array.from({ length: n }, (_, i) => buf.readFloatLE(28 + 4 * (off + i)));
  // token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, then rms_final.
  const rmsFinalAt = vocab * dim + L * dim + L * dim * dim + 2 * L * kv * dim + L * dim * dim + L * dim + 3 * L * hidden * dim;
  // Then freq_cis_real and freq_cis_imag (seq_len · head_size / 2 each); wcls follows when vocab_size < 0, else it is the embedding.
  const wclsAt = vocabSigned > 0 ? 0 : rmsFinalAt + dim + seqLen * (dim / heads);
  return { dim, vocab, L, rmsFinal: f(rmsFinalAt, dim), wcls: f(wclsAt, vocab * dim) };
}

describe.skipIf(!haveStories)('dashboard on stories260K (llama2c:PATH): logit effects against a float64 reference', () => {
  const bin = join(stories, 'stories260K.bin');
  const saeDir = join(tmp, 'sae-stories');
  const out = join(tmp, 'dash-stories');
  const M = 16;
  let wDec: Float32Array;
  let dim = 0;
  beforeAll(async () => {
    dim = readStoriesHead(bin).dim;
    const cfg = relu.configSchema.parse({ dIn: dim, dSae: M });
    const params = relu.init(cfg, new Rng(4));
    wDec = Float32Array.from(params.W_dec!.data);
    await saveSae(saeDir, relu, cfg, params, { hookName: 'blocks.2.hook_resid_post' });
    await runDashboard({ sae: saeDir, lm: `llama2c:${bin}`, out, corpus: 'brown', tokens: 400, context: 64, latents: 4, quiet: true });
  });

  it('each latent page lists the top 10 promoted and suppressed tokens of W_U (g ⊙ w_dec) in float64', () => {
    const { rmsFinal, wcls, vocab } = readStoriesHead(bin);
    const tok = createTokenizer(`llama2c:${join(stories, 'tok512.bin')}`, vocab);
    const pages = readdirSync(join(out, 'latents'));
    expect(pages.length).toBe(4);
    let checked = 0;
    for (const p of pages) {
      const j = Number(p.replace('.html', ''));
      const section = logitSection(readFileSync(join(out, 'latents', p), 'utf8'));
      const ref = Array.from({ length: vocab }, (_, v) => {
        let s = 0;
        for (let i = 0; i < dim; i++) s += wcls[v * dim + i]! * rmsFinal[i]! * wDec[j * dim + i]!;
        return { v, s };
      });
      const desc = [...ref].sort((a, b) => b.s - a.s);
      for (const [which, want] of [
        ['promoted', desc.slice(0, 10)],
        ['suppressed', desc.slice(-10).reverse()],
      ] as const) {
        const got = logitTable(section, which);
        expect(got.length).toBe(10);
        got.forEach(([token, e], r) => {
          // The page prints 3 significant digits.
          expect(Math.abs(e - want[r]!.s)).toBeLessThanOrEqual(Math.abs(want[r]!.s) * 5e-3 + 1e-6);
          const gap = Math.min(r > 0 ? Math.abs(want[r - 1]!.s - want[r]!.s) : Infinity, r < 9 ? Math.abs(want[r]!.s - want[r + 1]!.s) : Infinity);
          if (gap > 1e-6) {
            expect(token).toBe(tok.decode([want[r]!.v]).replace(/\n/g, '↵').replace(/\t/g, '⇥'));
            checked++;
          }
        });
      }
      expect(desc[0]!.s).toBeGreaterThan(0);
      expect(desc[vocab - 1]!.s).toBeLessThan(0);
    }
    expect(checked).toBeGreaterThan(60);
  });
});
if (!haveStories) it(`(${storiesSkipMessage})`, () => undefined);

/**
 * safetensors as the Python library writes it (u64 LE header length, JSON header padded with spaces to 8 bytes,
 * raw little-endian float32), written here without our encoder.
 */
function safetensorsF32(tensors: Record<string, { shape: number[]; data: Float64Array }>): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const name of Object.keys(tensors).sort()) {
    const t = tensors[name]!;
    const b = Buffer.alloc(4 * t.data.length);
    t.data.forEach((v, i) => b.writeFloatLE(v, 4 * i));
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + b.length] };
    offset += b.length;
    chunks.push(b);
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json), ...chunks]);
}

describe('dashboard on a SAELens folder written elsewhere (sae_lens 6.x standard SAE layout)', () => {
  const dir = join(tmp, 'saelens-standard');
  const out = join(tmp, 'dash-saelens');
  const model = join(tmp, 'tiny-saelens.onnx');
  const M = 10;
  const rng = new Rng(21);
  const randn = (n: number, s: number) => Float64Array.from({ length: n }, () => s * rng.normal());
  // W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in] (sae_lens/saes/standard_sae.py).
  const W_enc = randn(D * M, 1);
  const W_dec = randn(M * D, 0.5);
  const b_enc = randn(M, 0.1);
  // Latent 0 can never fire; latent 1 fires on every token (|(x − b_dec) W_enc| < 40 for x = tanh(·) ∈ (−1, 1)^8).
  b_enc[0] = -1e3;
  b_enc[1] = 100;
  const b_dec = randn(D, 0.1);
  beforeAll(async () => {
    writeFileSync(model, buildTinyOnnxLm(GPT2_VOCAB, D, 6).bytes);
    mkdirSync(dir, { recursive: true });
    // cfg.json as sae_lens 6.x SAEConfig.to_dict() writes it (metadata.hook_name, no saelab section).
    const cfg = {
      d_in: D,
      d_sae: M,
      dtype: 'float32',
      device: 'cpu',
      apply_b_dec_to_input: true,
      normalize_activations: 'none',
      reshape_activations: 'none',
      metadata: { sae_lens_version: '6.5.1', sae_lens_training_version: '6.5.1', model_name: 'tiny-onnx', hook_name: 'hidden_1', hook_head_index: null, context_size: 16, prepend_bos: true },
      architecture: 'standard',
    };
    writeFileSync(join(dir, 'cfg.json'), JSON.stringify(cfg));
    writeFileSync(join(dir, 'sae_weights.safetensors'), safetensorsF32({ W_enc: { shape: [D, M], data: W_enc }, W_dec: { shape: [M, D], data: W_dec }, b_enc: { shape: [M], data: b_enc }, b_dec: { shape: [D], data: b_dec } }));
    await runDashboard({ sae: dir, lm: `onnx:${model}`, out, corpus: 'brown', tokens: 200, context: 16, latents: 'all', quiet: true });
  });

  it('renders: every latent in the index and a page each; the dead and always-on latents are where the weights put them', () => {
    const latents = JSON.parse(readFileSync(join(out, 'latents.json'), 'utf8')).latents as { id: number; frequency: number; meanAct: number | null }[];
    expect(latents.map((l) => l.id)).toEqual(Array.from({ length: M }, (_, j) => j));
    expect(readdirSync(join(out, 'latents')).length).toBe(M);
    expect(latents[0]!.frequency).toBe(0);
    expect(latents[1]!.frequency).toBe(1);
    expect(Math.abs(latents[1]!.meanAct! - 100)).toBeLessThan(40);
    const index = readFileSync(join(out, 'index.html'), 'utf8');
    expect((index.match(/<tr data-id="/g) ?? []).length).toBe(M);
  });

  it("nearest latents follow the folder's decoder rows (W_dec read as [d_sae, d_in])", () => {
    const cos = (a: number, b: number) => {
      let ab = 0;
      let aa = 0;
      let bb = 0;
      for (let i = 0; i < D; i++) {
        ab += W_dec[a * D + i]! * W_dec[b * D + i]!;
        aa += W_dec[a * D + i]! ** 2;
        bb += W_dec[b * D + i]! ** 2;
      }
      return ab / Math.sqrt(aa * bb);
    };
    for (let j = 0; j < M; j++) {
      const page = readFileSync(join(out, 'latents', `${j}.html`), 'utf8');
      const m = /<h2>Nearest latents by decoder cosine<\/h2><table>([\s\S]*?)<\/table>/.exec(page);
      expect(m).not.toBeNull();
      const first = /<tr><td class="l">[\s\S]*?(\d+)[\s\S]*?<\/td><td>([^<]*)<\/td><\/tr>/.exec(m![1]!)!;
      const want = Array.from({ length: M }, (_, k) => k)
        .filter((k) => k !== j)
        .map((k) => ({ k, c: cos(j, k) }))
        .sort((a, b) => b.c - a.c)[0]!;
      expect(Number(first[2])).toBeCloseTo(want.c, 2);
      expect(Number(first[1])).toBe(want.k);
    }
  });

  it('a pre-6.0 cfg.json (hook_point at the top level, no architecture key) finds its site without --site', async () => {
    const old = join(tmp, 'saelens-pre6');
    mkdirSync(old, { recursive: true });
    const cfg = { d_in: D, d_sae: M, dtype: 'torch.float32', device: 'cpu', model_name: 'tiny-onnx', hook_point: 'hidden_1', hook_point_layer: 1, hook_point_head_index: null, activation_fn_str: 'relu', apply_b_dec_to_input: true, normalize_activations: null, context_size: 16 };
    writeFileSync(join(old, 'cfg.json'), JSON.stringify(cfg));
    writeFileSync(join(old, 'sae_weights.safetensors'), safetensorsF32({ W_enc: { shape: [D, M], data: W_enc }, W_dec: { shape: [M, D], data: W_dec }, b_enc: { shape: [M], data: b_enc }, b_dec: { shape: [D], data: b_dec } }));
    const out2 = join(tmp, 'dash-saelens-pre6');
    await runDashboard({ sae: old, lm: `onnx:${model}`, out: out2, corpus: 'brown', tokens: 200, context: 16, latents: 'all', quiet: true });
    const freq = (o: string) => (JSON.parse(readFileSync(join(o, 'latents.json'), 'utf8')).latents as { frequency: number }[]).map((l) => l.frequency);
    // The same weights on the same tokens as the 6.x folder: the same firing frequencies.
    expect(freq(out2)).toEqual(freq(out));
    expect(readdirSync(join(out2, 'latents')).length).toBe(M);
  });
});
