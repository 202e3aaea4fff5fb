/**
 * Folders exactly as SAELens (Python) writes them, built here byte by byte (safetensors header JSON + raw
 * little-endian float data, independent of our encoder), loaded through loadSae / the CLI, and compared with a
 * float64 implementation of SAELens's own forward passes.
 *
 * Source followed: decoderesearch/SAELens (sae-lens 6.x, pyproject version 6.52.0): sae_lens/saes/sae.py
 * (SAEConfig.to_dict → cfg.json fields, save_model, process_sae_in), standard_sae.py, gated_sae.py, topk_sae.py
 * (TopKSAEConfig.k / rescale_acts_by_decoder_norm, _fold_norm_topk), jumprelu_sae.py (relu(pre) · (pre >
 * relu(threshold)); older checkpoints' log_threshold), and loading/pretrained_sae_loaders.py (pre-6.0 configs:
 * activation_fn_str + activation_fn_kwargs.k, bool normalize_activations, hook_point, scaling_factor tensor).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng, defaultEngine, readNpyFile } from '@saelab/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSae } from '../src/sae-folder.js';
import { cli, decode64, decoderNorms, encode64, maxRelErr, type P64, tempDir, writeSynthetic } from './util.js';

const D_IN = 8;
const D_SAE = 16;
const ROWS = 64;

/** bfloat16 = the top 16 bits of a float32 (round to nearest even), as torch stores it. */
function toBf16Bits(v: number): number {
  const u = new Uint32Array(Float32Array.of(v).buffer)[0]!;
  return ((u + 0x7fff + ((u >> 16) & 1)) >>> 16) & 0xffff;
}
const bf16ToNumber = (b: number) => new Float32Array(Uint32Array.of(b << 16).buffer)[0]!;

/**
 * A safetensors file as the Rust/Python `safetensors` library writes it: u64 LE header length, JSON header
 * (tensors sorted by name, data_offsets relative to the data buffer, optional __metadata__), padded with spaces to
 * a multiple of 8, then each tensor's raw little-endian bytes. Returns the values as actually stored (bf16-rounded).
 */
function safetensorsBytes(tensors: Record<string, { shape: number[]; data: Float64Array }>, o: { dtype?: 'F32' | 'BF16'; metadata?: Record<string, string> } = {}): { bytes: Buffer; stored: P64 } {
  const dtype = o.dtype ?? 'F32';
  const width = dtype === 'F32' ? 4 : 2;
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = o.metadata ? { __metadata__: o.metadata } : {};
  const chunks: Buffer[] = [];
  const stored: P64 = {};
  let offset = 0;
  for (const name of names) {
    const t = tensors[name]!;
    const buf = Buffer.alloc(t.data.length * width);
    stored[name] = new Float64Array(t.data.length);
    for (let i = 0; i < t.data.length; i++) {
      if (dtype === 'F32') {
        buf.writeFloatLE(t.data[i]!, i * 4);
        stored[name]![i] = Math.fround(t.data[i]!);
      } else {
        const bits = toBf16Bits(t.data[i]!);
        buf.writeUInt16LE(bits, i * 2);
        stored[name]![i] = bf16ToNumber(bits);
      }
    }
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + buf.length] };
    offset += buf.length;
    chunks.push(buf);
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return { bytes: Buffer.concat([len, Buffer.from(json, 'utf8'), ...chunks]), stored };
}

function randn(rng: Rng, n: number, s: number, mean = 0): Float64Array {
  return Float64Array.from({ length: n }, () => mean + s * rng.normal());
}

/** cfg.json as SAELens 6 `SAEConfig.to_dict()` + json.dump writes it. */
function saelens6Cfg(architecture: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    d_in: D_IN,
    d_sae: D_SAE,
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: true,
    normalize_activations: 'none',
    reshape_activations: 'none',
    metadata: {
      sae_lens_version: '6.5.1',
      sae_lens_training_version: '6.5.1',
      model_name: 'gpt2',
      hook_name: 'blocks.6.hook_resid_post',
      hook_head_index: null,
      context_size: 128,
      prepend_bos: true,
      seqpos_slice: [null],
      model_from_pretrained_kwargs: { center_writing_weights: false },
      dataset_path: 'apollo-research/Skylion007-openwebtext-tokenizer-gpt2',
    },
    ...extra,
    architecture,
  };
}

let tmp: Awaited<ReturnType<typeof tempDir>>;
let xPath: string;
let x: Float32Array;

beforeAll(async () => {
  tmp = await tempDir('saelens');
  xPath = join(tmp.dir, 'x.npy');
  x = (await writeSynthetic(xPath, { rows: ROWS, dIn: D_IN, scale: 2, seed: 11 })).data;
});
afterAll(() => tmp.cleanup());

interface Case {
  name: string;
  cfg: Record<string, unknown>;
  tensors: (rng: Rng) => Record<string, { shape: number[]; data: Float64Array }>;
  dtype?: 'F32' | 'BF16';
  metadata?: Record<string, string>;
  /** SAELens's forward on the stored values, float64. */
  forward: (p: P64, x: Float32Array) => { f: Float64Array; margin: Float64Array; xHat: Float64Array };
  arch: string;
}

const std = (rng: Rng, extra: Record<string, Float64Array> = {}) => ({
  W_enc: { shape: [D_IN, D_SAE], data: randn(rng, D_IN * D_SAE, 0.5) },
  b_enc: { shape: [D_SAE], data: randn(rng, D_SAE, 0.2) },
  W_dec: { shape: [D_SAE, D_IN], data: randn(rng, D_SAE * D_IN, 0.4) }, // not unit norm: no hidden assumption
  b_dec: { shape: [D_IN], data: randn(rng, D_IN, 0.3) },
  ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, { shape: [v.length], data: v }])),
});
const plainDecode = (p: P64, f: Float64Array) => decode64(f, ROWS, D_IN, D_SAE, p.W_dec!, p.b_dec!);

const CASES: Case[] = [
  {
    name: 'standard (SAELens 6, with safetensors __metadata__)',
    arch: 'relu',
    cfg: saelens6Cfg('standard'),
    metadata: { format: 'pt' },
    tensors: (rng) => std(rng),
    forward: (p, xx) => {
      const e = encode64('standard', p, xx, ROWS, D_IN, D_SAE);
      return { ...e, xHat: plainDecode(p, e.f) };
    },
  },
  {
    name: 'gated (SAELens 6)',
    arch: 'gated',
    cfg: saelens6Cfg('gated'),
    tensors: (rng) => {
      const { b_enc: _drop, ...rest } = std(rng);
      return { ...rest, b_gate: { shape: [D_SAE], data: randn(rng, D_SAE, 0.3) }, r_mag: { shape: [D_SAE], data: randn(rng, D_SAE, 0.3) }, b_mag: { shape: [D_SAE], data: randn(rng, D_SAE, 0.3) } };
    },
    forward: (p, xx) => {
      const e = encode64('gated', p, xx, ROWS, D_IN, D_SAE);
      return { ...e, xHat: plainDecode(p, e.f) };
    },
  },
  {
    name: "topk (SAELens 6: architecture 'topk', k, rescale_acts_by_decoder_norm: true)",
    arch: 'topk',
    cfg: saelens6Cfg('topk', { k: 5, rescale_acts_by_decoder_norm: true }),
    tensors: (rng) => std(rng),
    forward: (p, xx) => {
      const e = encode64('topk', p, xx, ROWS, D_IN, D_SAE, { k: 5, rescaleByDecoderNorm: true });
      // decode: (f / ‖W_dec,i‖) W_dec + b_dec
      const n = decoderNorms(p.W_dec!, D_IN, D_SAE);
      return { ...e, xHat: plainDecode(p, e.f.map((v, i) => v / n[i % D_SAE]!)) };
    },
  },
  {
    name: "topk (SAELens 6, rescale_acts_by_decoder_norm: false, bfloat16 weights)",
    arch: 'topk',
    cfg: saelens6Cfg('topk', { k: 3, rescale_acts_by_decoder_norm: false, dtype: 'bfloat16' }),
    dtype: 'BF16',
    tensors: (rng) => std(rng),
    forward: (p, xx) => {
      const e = encode64('topk', p, xx, ROWS, D_IN, D_SAE, { k: 3 });
      return { ...e, xHat: plainDecode(p, e.f) };
    },
  },
  {
    name: "topk (pre-6.0: architecture 'standard', activation_fn_str 'topk', activation_fn_kwargs.k, bool normalize_activations)",
    arch: 'topk',
    cfg: {
      model_name: 'gpt2-small',
      hook_point: 'blocks.8.hook_resid_pre',
      hook_point_layer: 8,
      hook_point_head_index: null,
      d_in: D_IN,
      d_sae: D_SAE,
      dtype: 'torch.float32',
      device: 'cuda',
      architecture: 'standard',
      activation_fn_str: 'topk',
      activation_fn_kwargs: { k: 4 },
      apply_b_dec_to_input: true,
      finetuning_scaling_factor: false,
      sae_lens_training_version: '3.13.0',
      prepend_bos: true,
      dataset_path: 'Skylion007/openwebtext',
      context_size: 128,
      normalize_activations: false,
    },
    tensors: (rng) => std(rng),
    forward: (p, xx) => {
      const e = encode64('topk', p, xx, ROWS, D_IN, D_SAE, { k: 4 });
      return { ...e, xHat: plainDecode(p, e.f) };
    },
  },
  {
    name: 'standard (pre-6.0, no architecture key, finetuning scaling_factor tensor, normalize_activations null)',
    arch: 'relu',
    cfg: { d_in: D_IN, d_sae: D_SAE, dtype: 'torch.float32', hook_point: 'blocks.0.hook_resid_pre', activation_fn_str: 'relu', apply_b_dec_to_input: false, finetuning_scaling_factor: true, normalize_activations: null },
    tensors: (rng) => std(rng, { scaling_factor: Float64Array.from({ length: D_SAE }, () => 0.5 + rng.uniform()) }),
    forward: (p, xx) => {
      const e = encode64('standard', p, xx, ROWS, D_IN, D_SAE, { applyBDec: false });
      // old SAE.decode: apply_finetuning_scaling_factor(f) @ W_dec + b_dec
      return { ...e, xHat: plainDecode(p, e.f.map((v, i) => v * p.scaling_factor![i % D_SAE]!)) };
    },
  },
  {
    name: 'jumprelu (SAELens 6, Gemma-Scope style: apply_b_dec_to_input false, some thresholds ≤ 0)',
    arch: 'jumprelu',
    cfg: saelens6Cfg('jumprelu', { apply_b_dec_to_input: false }),
    tensors: (rng) => std(rng, { threshold: Float64Array.from({ length: D_SAE }, (_, i) => (i % 4 === 0 ? -0.3 : 0.05 + 0.4 * rng.uniform())) }),
    forward: (p, xx) => {
      const e = encode64('jumprelu', p, xx, ROWS, D_IN, D_SAE, { applyBDec: false });
      return { ...e, xHat: plainDecode(p, e.f) };
    },
  },
  {
    name: 'jumprelu (older SAELens training checkpoint: log_threshold)',
    arch: 'jumprelu',
    cfg: saelens6Cfg('jumprelu'),
    tensors: (rng) => std(rng, { log_threshold: Float64Array.from({ length: D_SAE }, () => Math.log(0.05 + 0.4 * rng.uniform())) }),
    forward: (p, xx) => {
      const withTheta = { ...p, threshold: p.log_threshold!.map(Math.exp) };
      const e = encode64('jumprelu', withTheta, xx, ROWS, D_IN, D_SAE);
      return { ...e, xHat: plainDecode(p, e.f) };
    },
  },
];

describe('folders written by SAELens', () => {
  it.each(CASES.map((c, i) => [c.name, i] as const))('%s', async (_name, i) => {
    const c = CASES[i]!;
    const dir = join(tmp.dir, `case-${i}`);
    await mkdir(dir);
    const { bytes, stored } = safetensorsBytes(c.tensors(new Rng(100 + i)), { dtype: c.dtype, metadata: c.metadata });
    await writeFile(join(dir, 'sae_weights.safetensors'), bytes);
    await writeFile(join(dir, 'cfg.json'), JSON.stringify(c.cfg)); // json.dump: compact, one line

    const sae = await loadSae(dir);
    expect(sae.arch.name).toBe(c.arch);
    expect(sae.cfg.dIn).toBe(D_IN);
    expect(sae.cfg.dSae).toBe(D_SAE);
    const ref = c.forward(stored, x);

    // through the library
    const engine = await defaultEngine();
    const xt = { data: x, shape: [ROWS, D_IN] };
    const f = await sae.arch.encode(sae.params, xt, sae.cfg, { engine });
    const fe = maxRelErr(f.data, ref.f, { margin: ref.margin, minMargin: 1e-4 });
    expect(fe.err).toBeLessThan(1e-5);
    expect(fe.skipped).toBeLessThanOrEqual(2);
    // every non-zero latent is where SAELens has one (skipping only razor-thin decisions)
    let agree = 0;
    for (let j = 0; j < f.data.length; j++) if ((f.data[j] !== 0) === (ref.f[j] !== 0)) agree++;
    expect(agree).toBeGreaterThanOrEqual(f.data.length - fe.skipped);
    const active = ref.f.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0);
    expect(active).toBeGreaterThan(ROWS); // the check is not vacuous
    expect(active).toBeLessThan(ROWS * D_SAE);

    const xHat = await sae.arch.decode(sae.params, { data: Float32Array.from(ref.f), shape: [ROWS, D_SAE] }, sae.cfg, { engine });
    expect(maxRelErr(xHat.data, ref.xHat).err).toBeLessThan(1e-5);

    // and through the CLI
    const fPath = join(dir, 'f.npy');
    const xhPath = join(dir, 'xhat.npy');
    expect((await cli('encode', '--sae', dir, '--activations', xPath, '--out', fPath)).code).toBe(0);
    expect((await cli('reconstruct', '--sae', dir, '--activations', xPath, '--out', xhPath)).code).toBe(0);
    expect(maxRelErr((await readNpyFile(fPath)).data, ref.f, { margin: ref.margin, minMargin: 1e-4 }).err).toBeLessThan(1e-5);
    if (fe.skipped === 0) expect(maxRelErr((await readNpyFile(xhPath)).data, ref.xHat).err).toBeLessThan(1e-5);
  });

  it('a folder we write reads back as the same SAELens config (architecture, k, no rescale flag)', async () => {
    const out = join(tmp.dir, 'ours-topk');
    const r = await cli('train', '--arch', 'topk', '--k', '2', '--activations', xPath, '--out', out, '--d-sae', String(D_SAE), '--steps', '3', '--batch', '16', '--quiet');
    expect(r.code).toBe(0);
    const sae = await loadSae(out);
    expect(sae.json.architecture).toBe('topk');
    expect(sae.json.k).toBe(2);
    // SAELens reads rescale_acts_by_decoder_norm as false when absent (TopKSAEConfig default): our plain TopK
    expect(sae.json.rescale_acts_by_decoder_norm).toBeUndefined();
    expect((sae.json.metadata as Record<string, unknown>).hook_name).toBeNull();
  });
});
