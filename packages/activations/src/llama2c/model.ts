/**
 * The llama2.c transformer (Llama architecture) in TypeScript, two ways:
 *  - `step(token, pos)`: run.c's `forward` for one token with a KV cache, used for generation. Same operation
 *    order as run.c (float32 storage), so greedy decoding reproduces the C program's output exactly.
 *  - `run(tokens, B, T, opts)`: the HookableLM batched forward over [B, T] (causal attention within each row),
 *    big matmuls on the core GEMM engine, with read/replace hooks at
 *    blocks.{l}.hook_resid_pre | hook_attn_out | hook_mlp_out | hook_resid_post.
 *
 * Per layer (Touvron et al. 2023, "LLaMA"):  h = x + Wo·Attn(RoPE(Wq·n), RoPE(Wk·n), Wv·n),  n = RMSNorm(x);
 * x' = h + W2·(SiLU(W1·m) ⊙ W3·m),  m = RMSNorm(h).  RMSNorm(x) = w ⊙ x / sqrt(mean(x²) + 1e-5).
 * RoPE (Su et al. 2021) rotates pairs (2i, 2i+1) within each head by pos·10000^(−2i/head_size).
 */
import { type GemmEngine, type HookableLM, type LmInfo, type LmRunOptions, type LmRunResult, type Tensor, defaultEngine } from '@saelab/core';
import { type Llama2cCheckpoint, type Llama2cConfig, headSize, kvDim, loadLlama2cCheckpoint } from './checkpoint.js';
import { LLAMA2C_BOS } from './tokenizer.js';

const SITE_RE = /^blocks\.(\d+)\.(hook_resid_pre|hook_attn_out|hook_mlp_out|hook_resid_post)$/;
const SITE_ORDER = ['hook_resid_pre', 'hook_attn_out', 'hook_mlp_out', 'hook_resid_post'] as const;

/** Parses a site name into (layer, order within the layer); throws a clear error for unknown sites. */
export function parseSite(site: string, nLayers: number): { layer: number; kind: (typeof SITE_ORDER)[number]; rank: number } {
  const m = SITE_RE.exec(site);
  if (!m || Number(m[1]) >= nLayers) {
    throw new Error(`unknown hook site "${site}": expected blocks.{0..${nLayers - 1}}.{${SITE_ORDER.join('|')}}`);
  }
  const layer = Number(m[1]);
  const kind = m[2] as (typeof SITE_ORDER)[number];
  return { layer, kind, rank: layer * 4 + SITE_ORDER.indexOf(kind) };
}

function rmsnorm(out: Float32Array, oOff: number, x: Float32Array, xOff: number, w: Float32Array, n: number): void {
  // run.c accumulates in float; float64 here differs by < 1 ulp after the final rounding to float32.
  let ss = 0;
  for (let j = 0; j < n; j++) ss += x[xOff + j]! * x[xOff + j]!;
  const s = 1 / Math.sqrt(Math.fround(Math.fround(ss / n) + 1e-5));
  for (let j = 0; j < n; j++) out[oOff + j] = w[j]! * Math.fround(s * x[xOff + j]!);
}

/** out[0..d) = W (d × n) · x[xOff .. xOff+n). */
function matvec(out: Float32Array, x: Float32Array, xOff: number, w: Float32Array, n: number, d: number): void {
  for (let i = 0; i < d; i++) {
    let v = 0;
    const r = i * n;
    for (let j = 0; j < n; j++) v += w[r + j]! * x[xOff + j]!;
    out[i] = v;
  }
}

function softmaxInPlace(a: Float32Array | Float64Array, off: number, n: number): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, a[off + i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    a[off + i] = Math.exp(a[off + i]! - max);
    sum += a[off + i]!;
  }
  for (let i = 0; i < n; i++) a[off + i] = a[off + i]! / sum;
}

/** cos/sin tables [seqLen, headSize/2] in float32, computed as run.c does (powf, then cosf/sinf of pos·freq). */
function ropeTables(c: Llama2cConfig): { cos: Float32Array; sin: Float32Array } {
  const hs = headSize(c);
  const half = hs / 2;
  const cos = new Float32Array(c.seqLen * half);
  const sin = new Float32Array(c.seqLen * half);
  for (let p = 0; p < c.seqLen; p++) {
    for (let i = 0; i < half; i++) {
      const freq = Math.fround(1 / Math.fround(Math.pow(10000, Math.fround((2 * i) / hs))));
      const val = Math.fround(p * freq);
      cos[p * half + i] = Math.cos(val);
      sin[p * half + i] = Math.sin(val);
    }
  }
  return { cos, sin };
}

/** Rotate pairs (2i, 2i+1) of each head of width `hs` in vec[off .. off+width) at position `pos`. */
function rope(vec: Float32Array, off: number, width: number, hs: number, pos: number, cos: Float32Array, sin: Float32Array): void {
  const half = hs / 2;
  for (let i = 0; i < width; i += 2) {
    const t = pos * half + ((i % hs) >> 1);
    const fcr = cos[t]!;
    const fci = sin[t]!;
    const v0 = vec[off + i]!;
    const v1 = vec[off + i + 1]!;
    vec[off + i] = v0 * fcr - v1 * fci;
    vec[off + i + 1] = v0 * fci + v1 * fcr;
  }
}

export interface Llama2cModelOptions {
  /** GEMM engine for the batched forward (default: core's defaultEngine()). */
  engine?: GemmEngine;
  name?: string;
}

export class Llama2cModel implements HookableLM {
  readonly info: LmInfo;
  readonly config: Llama2cConfig;
  private readonly ck: Llama2cCheckpoint;
  private readonly rot: { cos: Float32Array; sin: Float32Array };
  private engine: GemmEngine | undefined;
  // KV-cache state for step()
  private keyCache: Float32Array;
  private valueCache: Float32Array;

  constructor(ck: Llama2cCheckpoint, opts: Llama2cModelOptions = {}) {
    this.ck = ck;
    this.config = ck.config;
    this.engine = opts.engine;
    this.rot = ropeTables(ck.config);
    const c = ck.config;
    this.info = { name: opts.name ?? 'llama2c', vocabSize: c.vocabSize, dModel: c.dim, nLayers: c.nLayers, maxSeqLen: c.seqLen, bos: LLAMA2C_BOS };
    this.keyCache = new Float32Array(c.nLayers * c.seqLen * kvDim(c));
    this.valueCache = new Float32Array(c.nLayers * c.seqLen * kvDim(c));
  }

  static load(path: string, opts: Llama2cModelOptions = {}): Llama2cModel {
    return new Llama2cModel(loadLlama2cCheckpoint(path), { name: `llama2c:${path}`, ...opts });
  }

  /**
   * The LM head as seen from the residual stream: logits = W_U · (g ⊙ x / rms(x)), W_U = wcls [V, dim], g = rms_final.
   * Used for a direction's direct logit effect (dashboards).
   */
  unembedding(): { gain: Float32Array; weight: Float32Array; vocab: number; d: number } {
    return { gain: this.ck.weights.rmsFinal, weight: this.ck.weights.wcls, vocab: this.config.vocabSize, d: this.config.dim };
  }

  sites(): string[] {
    const out: string[] = [];
    for (let l = 0; l < this.config.nLayers; l++) for (const k of SITE_ORDER) out.push(`blocks.${l}.${k}`);
    return out;
  }

  siteDim(site: string): number {
    parseSite(site, this.config.nLayers);
    return this.config.dim;
  }

  /**
   * run.c `forward(token, pos)`: logits [vocab] for `token` at position `pos`, filling the KV cache at `pos`.
   * Positions must be visited in order 0, 1, 2, … (a new sequence restarts at 0).
   */
  step(token: number, pos: number): Float32Array {
    const c = this.config;
    const w = this.ck.weights;
    if (pos < 0 || pos >= c.seqLen) throw new Error(`position ${pos} outside the model's context [0, ${c.seqLen})`);
    if (token < 0 || token >= c.vocabSize) throw new Error(`token ${token} outside the vocabulary [0, ${c.vocabSize})`);
    const { dim, hiddenDim } = c;
    const hs = headSize(c);
    const kv = kvDim(c);
    const kvMul = c.nHeads / c.nKvHeads;
    const x = w.tokenEmbedding.slice(token * dim, (token + 1) * dim);
    const xb = new Float32Array(dim);
    const xb2 = new Float32Array(dim);
    const q = new Float32Array(dim);
    const hb = new Float32Array(hiddenDim);
    const hb2 = new Float32Array(hiddenDim);
    const att = new Float32Array(pos + 1);
    const scale = Math.fround(Math.sqrt(hs));
    for (let l = 0; l < c.nLayers; l++) {
      const L = w.layers[l]!;
      rmsnorm(xb, 0, x, 0, L.rmsAtt, dim);
      const loff = l * c.seqLen * kv;
      const k = this.keyCache.subarray(loff + pos * kv, loff + (pos + 1) * kv);
      const v = this.valueCache.subarray(loff + pos * kv, loff + (pos + 1) * kv);
      matvec(q, xb, 0, L.wq, dim, dim);
      matvec(k, xb, 0, L.wk, dim, kv);
      matvec(v, xb, 0, L.wv, dim, kv);
      rope(q, 0, dim, hs, pos, this.rot.cos, this.rot.sin);
      rope(k, 0, kv, hs, pos, this.rot.cos, this.rot.sin);
      for (let h = 0; h < c.nHeads; h++) {
        const qo = h * hs;
        const ko = Math.floor(h / kvMul) * hs;
        for (let t = 0; t <= pos; t++) {
          let score = 0;
          const kt = loff + t * kv + ko;
          for (let i = 0; i < hs; i++) score += q[qo + i]! * this.keyCache[kt + i]!;
          att[t] = Math.fround(score) / scale;
        }
        softmaxInPlace(att, 0, pos + 1);
        for (let i = 0; i < hs; i++) xb[qo + i] = 0;
        for (let t = 0; t <= pos; t++) {
          const a = att[t]!;
          const vt = loff + t * kv + ko;
          for (let i = 0; i < hs; i++) xb[qo + i] += a * this.valueCache[vt + i]!;
        }
      }
      matvec(xb2, xb, 0, L.wo, dim, dim);
      for (let i = 0; i < dim; i++) x[i] += xb2[i]!;
      rmsnorm(xb, 0, x, 0, L.rmsFfn, dim);
      matvec(hb, xb, 0, L.w1, dim, hiddenDim);
      matvec(hb2, xb, 0, L.w3, dim, hiddenDim);
      for (let i = 0; i < hiddenDim; i++) {
        const val = hb[i]!;
        hb[i] = Math.fround(val * Math.fround(1 / (1 + Math.exp(-val)))) * hb2[i]!;
      }
      matvec(xb, hb, 0, L.w2, hiddenDim, dim);
      for (let i = 0; i < dim; i++) x[i] += xb[i]!;
    }
    rmsnorm(x, 0, x, 0, w.rmsFinal, dim);
    const logits = new Float32Array(c.vocabSize);
    matvec(logits, x, 0, w.wcls, dim, c.vocabSize);
    return logits;
  }

  private async gemm(): Promise<GemmEngine> {
    this.engine ??= await defaultEngine();
    return this.engine;
  }

  /** y [N, out] = x [N, in] · Wᵀ for a (out, in) weight. */
  private async linear(x: Float32Array, n: number, w: Float32Array, inDim: number, outDim: number): Promise<Float32Array> {
    const e = await this.gemm();
    const r = await e.gemm({ data: x, shape: [n, inDim] }, { data: w, shape: [outDim, inDim] }, { transB: true });
    return r.data;
  }

  async run(tokens: Int32Array, batch: number, seqLen: number, opts: LmRunOptions = {}): Promise<LmRunResult> {
    const c = this.config;
    const w = this.ck.weights;
    if (!Number.isInteger(batch) || !Number.isInteger(seqLen) || batch < 1 || seqLen < 1) {
      throw new Error(`run: batch and seqLen must be positive integers (got ${batch}, ${seqLen})`);
    }
    if (tokens.length !== batch * seqLen) throw new Error(`run: ${tokens.length} tokens but batch·seqLen = ${batch * seqLen}`);
    if (seqLen > c.seqLen) throw new Error(`run: seqLen ${seqLen} exceeds the model's context ${c.seqLen}`);
    for (let i = 0; i < tokens.length; i++) {
      if (tokens[i]! < 0 || tokens[i]! >= c.vocabSize) throw new Error(`run: token ${tokens[i]} at index ${i} outside the vocabulary [0, ${c.vocabSize})`);
    }
    const reads = new Set(opts.read ?? []);
    const ranks = [...reads].map((s) => parseSite(s, c.nLayers).rank);
    if (opts.replace) ranks.push(parseSite(opts.replace.site, c.nLayers).rank);
    // With skipLogits we can stop after the deepest site anybody asked about.
    const lastRank = opts.skipLogits ? Math.max(-1, ...ranks) : Infinity;
    const N = batch * seqLen;
    const { dim, hiddenDim } = c;
    const acts: Record<string, Tensor> = {};

    /** Read and/or replace the activation `a` ([N, dim]) at `site`; returns the (possibly new) array. */
    const hook = async (site: string, a: Float32Array): Promise<Float32Array> => {
      let out = a;
      if (opts.replace && opts.replace.site === site) {
        const r = await opts.replace.fn({ data: a.slice(), shape: [N, dim] });
        if (r.shape.length !== 2 || r.shape[0] !== N || r.shape[1] !== dim) {
          throw new Error(`replace at ${site}: function returned shape [${r.shape.join(', ')}], expected [${N}, ${dim}]`);
        }
        out = r.data.slice(); // we add into it later; never mutate the caller's array
      }
      if (reads.has(site)) acts[site] = { data: out.slice(), shape: [N, dim] };
      return out;
    };

    let x: Float32Array = new Float32Array(N * dim);
    for (let i = 0; i < N; i++) x.set(w.tokenEmbedding.subarray(tokens[i]! * dim, (tokens[i]! + 1) * dim), i * dim);
    const xn = new Float32Array(N * dim);
    for (let l = 0; l < c.nLayers; l++) {
      if (l * 4 > lastRank) break;
      const L = w.layers[l]!;
      x = await hook(`blocks.${l}.hook_resid_pre`, x);
      for (let i = 0; i < N; i++) rmsnorm(xn, i * dim, x, i * dim, L.rmsAtt, dim);
      let attn: Float32Array = await this.attention(xn, l, batch, seqLen);
      attn = await hook(`blocks.${l}.hook_attn_out`, attn);
      for (let i = 0; i < x.length; i++) x[i] += attn[i]!;
      for (let i = 0; i < N; i++) rmsnorm(xn, i * dim, x, i * dim, L.rmsFfn, dim);
      const h1 = await this.linear(xn, N, L.w1, dim, hiddenDim);
      const h3 = await this.linear(xn, N, L.w3, dim, hiddenDim);
      for (let i = 0; i < h1.length; i++) {
        const v = h1[i]!;
        h1[i] = (v / (1 + Math.exp(-v))) * h3[i]!; // SiLU(W1·m) ⊙ W3·m
      }
      let mlp: Float32Array = await this.linear(h1, N, L.w2, hiddenDim, dim);
      mlp = await hook(`blocks.${l}.hook_mlp_out`, mlp);
      for (let i = 0; i < x.length; i++) x[i] += mlp[i]!;
      x = await hook(`blocks.${l}.hook_resid_post`, x);
    }
    if (opts.skipLogits) return { acts };
    for (let i = 0; i < N; i++) rmsnorm(xn, i * dim, x, i * dim, w.rmsFinal, dim);
    const logits = await this.linear(xn, N, w.wcls, dim, c.vocabSize);
    return { logits: { data: logits, shape: [N, c.vocabSize] }, acts };
  }

  /** Causal grouped-query attention for layer l over [B, T]; returns Wo·(softmax(qkᵀ/√hs)·v), [N, dim]. */
  private async attention(xn: Float32Array, l: number, B: number, T: number): Promise<Float32Array> {
    const c = this.config;
    const L = this.ck.weights.layers[l]!;
    const N = B * T;
    const { dim } = c;
    const hs = headSize(c);
    const kv = kvDim(c);
    const q = await this.linear(xn, N, L.wq, dim, dim);
    const k = await this.linear(xn, N, L.wk, dim, kv);
    const v = await this.linear(xn, N, L.wv, dim, kv);
    for (let i = 0; i < N; i++) {
      const pos = i % T;
      rope(q, i * dim, dim, hs, pos, this.rot.cos, this.rot.sin);
      rope(k, i * kv, kv, hs, pos, this.rot.cos, this.rot.sin);
    }
    const e = await this.gemm();
    const fused = e.causalAttention && (await e.causalAttention(q, k, v, { batch: B, seqLen: T, heads: c.nHeads, kvHeads: c.nKvHeads, headSize: hs }));
    return this.linear(fused || this.attentionLoop(q, k, v, B, T), N, L.wo, dim, dim);
  }

  /** softmax(qkᵀ/√hs)·v by loops, accumulated in float64: the path for engines without a fused `causalAttention`. */
  private attentionLoop(q: Float32Array, k: Float32Array, v: Float32Array, B: number, T: number): Float32Array {
    const c = this.config;
    const N = B * T;
    const { dim } = c;
    const hs = headSize(c);
    const kv = kvDim(c);
    const kvMul = c.nHeads / c.nKvHeads;
    const out = new Float32Array(N * dim);
    const att = new Float64Array(T);
    const acc = new Float64Array(hs);
    const qh = new Float64Array(hs);
    const scale = 1 / Math.sqrt(hs);
    // Per (sequence, kv head): keys and values gathered into contiguous [T, hs] blocks, so the inner loops
    // below walk memory sequentially.
    const kb = new Float32Array(T * hs);
    const vb = new Float32Array(T * hs);
    for (let b = 0; b < B; b++) {
      for (let g = 0; g < c.nKvHeads; g++) {
        for (let s = 0; s < T; s++) {
          const src = (b * T + s) * kv + g * hs;
          kb.set(k.subarray(src, src + hs), s * hs);
          vb.set(v.subarray(src, src + hs), s * hs);
        }
        for (let h = g * kvMul; h < (g + 1) * kvMul; h++) {
          for (let t = 0; t < T; t++) {
            const qo = (b * T + t) * dim + h * hs;
            for (let i = 0; i < hs; i++) qh[i] = q[qo + i]! * scale;
            // scores and their max (for a stable softmax)
            let max = -Infinity;
            for (let s = 0, ks = 0; s <= t; s++, ks += hs) {
              let score = 0;
              for (let i = 0; i < hs; i++) score += qh[i]! * kb[ks + i]!;
              att[s] = score;
              if (score > max) max = score;
            }
            // out = Σ_s softmax(scores)_s · v_s, normalising once at the end
            let sum = 0;
            acc.fill(0);
            for (let s = 0, vs = 0; s <= t; s++, vs += hs) {
              const e = Math.exp(att[s]! - max);
              sum += e;
              for (let i = 0; i < hs; i++) acc[i] += e * vb[vs + i]!;
            }
            for (let i = 0; i < hs; i++) out[qo + i] = acc[i]! / sum;
          }
        }
      }
    }
    return out;
  }
}
