/**
 * The Longhorn language model (and its Mamba, Mamba2, DeltaNet and Gated DeltaNet twins: same block, other transition): token embedding N(0, 0.02) → n_layer × [residual +=
 * mixer(RMSNorm(residual))] → RMSNorm → tied LM head. No MLP (as the paper's models). Hand-written backward.
 * Parameter names follow the official code: embedding.weight, layers.{i}.norm.weight, layers.{i}.mixer.*,
 * norm_f.weight (the head is tied to embedding.weight). These are the official `MixerModel` (backbone) keys; the
 * official LM checkpoint prefixes them with `backbone.`, stores the tied head again as `lm_head.weight` and pads
 * the vocabulary to a multiple of 8 — a loader of official weights strips the prefix and the padding.
 *
 * Implements saelab's HookableLM (sites blocks.{l}.hook_resid_pre / hook_resid_post), so a trained model is an
 * activation source for the SAEs.
 */
import { z } from 'zod';
import {
  type GemmEngine, type HookableLM, type LmInfo, type LmRunOptions, type LmRunResult, type Params, type Tensor,
  Rng, defaultEngine, tensor, zeros, zerosLike,
} from '@saelab/core';
import { TRANSITIONS } from './scan.js';
import { type MixerCache, type MixerDims, type MixerState, initMixer, mixerBackward, mixerForward, mixerShapes, mixerStep, newMixerState } from './mixer.js';
import { IGNORE, crossEntropy, rmsNormBackward, rmsNormForward } from './ops.js';
import { simdEpoch, simdOpsAvailable, simdScratch } from './ops-simd.js';

export const LonghornConfigSchema = z.object({
  vocabSize: z.number().int().min(2),
  dModel: z.number().int().min(1),
  nLayers: z.number().int().min(1),
  dState: z.number().int().min(1).default(16),
  expand: z.number().int().min(1).default(2),
  dConv: z.number().int().min(2).default(4), // the decoder carries a window of dConv − 1 inputs
  /** Default ceil(d_model/16). */
  dtRank: z.number().int().min(1).optional(),
  variant: z.enum(TRANSITIONS).default('longhorn-diag'),
  /** Scan checkpoint interval C (memory/recompute trade-off only; results do not depend on it). */
  scanChunk: z.number().int().min(1).default(16),
  normEps: z.number().positive().default(1e-5),
  /** Token that begins sequences (e.g. <eot> of a restricted vocabulary); rows at BOS are excluded from harvests. */
  bos: z.number().int().min(0).nullable().default(null),
  /** Channels per head of Mamba2 / DeltaNet / Gated DeltaNet (must divide d_inner). Default min(64, d_inner): mamba2_simple's headdim. */
  headDim: z.number().int().min(1).optional(),
  /** Mamba / Mamba2: initial Δ = softplus(dt bias) log-uniform in [lo, hi] (reference [1e-3, 1e-1]; the dt-init ablation moves it). */
  dtInit: z.tuple([z.number().positive(), z.number().positive()]).refine(([lo, hi]) => lo <= hi, 'dtInit: need lo ≤ hi').default([1e-3, 1e-1]),
});
export type LonghornConfigInput = z.input<typeof LonghornConfigSchema>;
export type LonghornConfig = Required<z.output<typeof LonghornConfigSchema>>;

export function parseConfig(input: LonghornConfigInput): LonghornConfig {
  const c = LonghornConfigSchema.parse(input);
  const dInner = c.expand * c.dModel;
  const headDim = c.headDim ?? Math.min(64, dInner);
  if (dInner % headDim !== 0) throw new Error(`LonghornLM config: headDim ${headDim} does not divide d_inner ${dInner}`);
  return { ...c, dtRank: c.dtRank ?? Math.ceil(c.dModel / 16), headDim };
}

export function mixerDims(c: LonghornConfig): MixerDims {
  return {
    dModel: c.dModel, dInner: c.expand * c.dModel, dState: c.dState, dtRank: c.dtRank, dConv: c.dConv, variant: c.variant, scanChunk: c.scanChunk,
    headDim: c.headDim, dtInit: c.dtInit,
  };
}

export const mixerPrefix = (l: number) => `layers.${l}.mixer.`;

/** Every parameter name with its shape. */
export function paramShapes(c: LonghornConfig): Record<string, number[]> {
  const s: Record<string, number[]> = { 'embedding.weight': [c.vocabSize, c.dModel] };
  const m = mixerDims(c);
  for (let l = 0; l < c.nLayers; l++) {
    s[`layers.${l}.norm.weight`] = [c.dModel];
    for (const [k, v] of Object.entries(mixerShapes(m))) s[mixerPrefix(l) + k] = v;
  }
  s['norm_f.weight'] = [c.dModel];
  return s;
}

export function initParams(c: LonghornConfig, seed: number): Params {
  const rng = new Rng(seed);
  const p: Params = {};
  const emb = zeros([c.vocabSize, c.dModel]);
  rng.fillNormal(emb.data, 0.02);
  p['embedding.weight'] = emb;
  for (let l = 0; l < c.nLayers; l++) {
    p[`layers.${l}.norm.weight`] = tensor(new Float32Array(c.dModel).fill(1), [c.dModel]);
    initMixer(mixerDims(c), c.nLayers, rng, mixerPrefix(l), p);
  }
  p['norm_f.weight'] = tensor(new Float32Array(c.dModel).fill(1), [c.dModel]);
  return p;
}

/** Parameter count and recurrent state floats per layer (what makes Longhorn-vs-Mamba comparisons fair). */
export function modelStats(c: LonghornConfig): { params: number; stateFloatsPerLayer: number } {
  let params = 0;
  for (const s of Object.values(paramShapes(c))) params += s.reduce((a, b) => a * b, 1);
  const m = mixerDims(c);
  return { params, stateFloatsPerLayer: m.dInner * m.dState + m.dInner * (m.dConv - 1) };
}

/** targets[b,t] = tokens[b,t+1]; the last position of each row is not scored. */
export function nextTokenTargets(tokens: Int32Array, B: number, L: number): Int32Array {
  const t = new Int32Array(B * L).fill(IGNORE);
  for (let b = 0; b < B; b++) for (let i = 0; i < L - 1; i++) t[b * L + i] = tokens[b * L + i + 1]!;
  return t;
}

interface ForwardCache {
  resid: Tensor[]; // residual entering each layer
  normIn: { y: Tensor; rstd: Float32Array }[];
  mixers: MixerCache[];
  final: Tensor; // residual after the last layer
  hf: Tensor;
  rstdF: Float32Array;
}

export interface ForwardOptions extends LmRunOptions {
  /** Keep what backward needs. */
  keepCache?: boolean;
  /**
   * Internal (training step): write the logits into WebAssembly memory (simdScratch), valid only until the next
   * kernel call, so the cross-entropy and the head's gradient GEMMs use them without copies.
   */
  logitsInWasm?: boolean;
}

export class LonghornLM implements HookableLM {
  readonly config: LonghornConfig;
  readonly info: LmInfo;
  private enginePromise: Promise<GemmEngine>;

  /** The LM head as seen from the residual stream: logits = E · (g ⊙ x / rms(x)), E tied to the embedding, g = norm_f. */
  unembedding(): { gain: Float32Array; weight: Float32Array; vocab: number; d: number } {
    return { gain: this.params['norm_f.weight']!.data, weight: this.params['embedding.weight']!.data, vocab: this.config.vocabSize, d: this.config.dModel };
  }

  constructor(config: LonghornConfigInput, readonly params: Params, engine?: GemmEngine) {
    this.config = parseConfig(config);
    const shapes = paramShapes(this.config);
    for (const [name, shape] of Object.entries(shapes)) {
      const t = params[name];
      if (!t) throw new Error(`LonghornLM: missing parameter '${name}'`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`LonghornLM: parameter '${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
      }
    }
    for (const name of Object.keys(params)) if (!shapes[name]) throw new Error(`LonghornLM: unexpected parameter '${name}'`);
    this.enginePromise = engine ? Promise.resolve(engine) : defaultEngine();
    this.info = {
      name: `${this.config.variant}-d${this.config.dModel}-l${this.config.nLayers}`,
      vocabSize: this.config.vocabSize,
      dModel: this.config.dModel,
      nLayers: this.config.nLayers,
      maxSeqLen: Infinity,
      bos: this.config.bos,
    };
  }

  /** A freshly initialised model. */
  static create(config: LonghornConfigInput, seed = 0, engine?: GemmEngine): LonghornLM {
    return new LonghornLM(config, initParams(parseConfig(config), seed), engine);
  }

  sites(): string[] {
    const s: string[] = [];
    for (let l = 0; l < this.config.nLayers; l++) s.push(`blocks.${l}.hook_resid_pre`, `blocks.${l}.hook_resid_post`);
    return s;
  }

  siteDim(site: string): number {
    if (!this.sites().includes(site)) throw new Error(`LonghornLM: unknown site '${site}' (have ${this.sites().join(', ')})`);
    return this.config.dModel;
  }

  private checkTokens(tokens: Int32Array, B: number, L: number): void {
    if (!Number.isInteger(B) || !Number.isInteger(L) || B < 1 || L < 1) throw new Error(`LonghornLM: batch and seqLen must be positive integers, got ${B}, ${L}`);
    if (tokens.length !== B * L) throw new Error(`LonghornLM: got ${tokens.length} tokens, expected batch·seqLen = ${B * L}`);
    const V = this.config.vocabSize;
    for (let i = 0; i < tokens.length; i++) {
      if (!(tokens[i]! >= 0 && tokens[i]! < V)) throw new Error(`LonghornLM: token ${tokens[i]} at ${i} outside [0, ${V})`);
    }
  }

  /** Applies a read/replace hook at `site` to the residual r (in place for replace). */
  private async hook(site: string, r: Tensor, opts: LmRunOptions, acts: Record<string, Tensor>): Promise<Tensor> {
    if (opts.replace?.site === site) {
      const rep = await opts.replace.fn(r);
      if (rep.shape.length !== 2 || rep.shape[0] !== r.shape[0] || rep.shape[1] !== r.shape[1]) {
        throw new Error(`LonghornLM: replacement at ${site} has shape [${rep.shape.join(', ')}], expected [${r.shape.join(', ')}]`);
      }
      r = { data: rep.data.slice(), shape: [...r.shape] };
    }
    if (opts.read?.includes(site)) acts[site] = { data: r.data.slice(), shape: [...r.shape] };
    return r;
  }

  /** Full forward: logits [B·L, V] (unless skipLogits), read activations, and (optionally) the backward cache. */
  async forward(tokens: Int32Array, B: number, L: number, opts: ForwardOptions = {}): Promise<LmRunResult & { cache?: ForwardCache }> {
    this.checkTokens(tokens, B, L);
    for (const s of [...(opts.read ?? []), ...(opts.replace ? [opts.replace.site] : [])]) this.siteDim(s);
    const engine = await this.enginePromise;
    const c = this.config;
    const d = c.dModel;
    const rows = B * L;
    const E = this.params['embedding.weight']!.data;
    let r = zeros([rows, d]);
    for (let i = 0; i < rows; i++) for (let j = 0, o = tokens[i]! * d; j < d; j++) r.data[i * d + j] = E[o + j]!;
    const acts: Record<string, Tensor> = {};
    const cache: ForwardCache = { resid: [], normIn: [], mixers: [], final: r, hf: r, rstdF: new Float32Array(0) };
    const lastRead = Math.max(-1, ...(opts.read ?? []).map((s) => Number(s.split('.')[1])));
    const m = mixerDims(c);
    for (let l = 0; l < c.nLayers; l++) {
      if (opts.skipLogits && !opts.keepCache && l > lastRead) return { acts };
      r = await this.hook(`blocks.${l}.hook_resid_pre`, r, opts, acts);
      const n = rmsNormForward(r.data, this.params[`layers.${l}.norm.weight`]!.data, rows, c.normEps);
      const { out, cache: mc } = await mixerForward(engine, m, this.params, mixerPrefix(l), tensor(n.y, [rows, d]), B, L);
      if (opts.keepCache) {
        cache.resid.push(r);
        cache.normIn.push({ y: tensor(n.y, [rows, d]), rstd: n.rstd });
        cache.mixers.push(mc);
      }
      const next = zeros([rows, d]);
      for (let i = 0; i < next.data.length; i++) next.data[i] = r.data[i]! + out.data[i]!;
      r = await this.hook(`blocks.${l}.hook_resid_post`, next, opts, acts);
    }
    if (opts.skipLogits && !opts.keepCache) return { acts };
    const f = rmsNormForward(r.data, this.params['norm_f.weight']!.data, rows, c.normEps);
    const hf = tensor(f.y, [rows, d]);
    const V = c.vocabSize;
    const out = opts.logitsInWasm && simdOpsAvailable(V) ? tensor(simdScratch(rows * V), [rows, V]) : undefined;
    const logits = await engine.gemm(hf, this.params['embedding.weight']!, { transB: true, out });
    Object.assign(cache, { final: r, hf, rstdF: f.rstd });
    return { logits, acts, cache: opts.keepCache ? cache : undefined };
  }

  /** HookableLM.run */
  async run(tokens: Int32Array, batch: number, seqLen: number, opts: LmRunOptions = {}): Promise<LmRunResult> {
    const { logits, acts } = await this.forward(tokens, batch, seqLen, opts);
    return logits ? { logits, acts } : { acts };
  }

  /**
   * Mean cross-entropy over positions with target ≠ IGNORE, and its gradient w.r.t. every parameter.
   * `correct` counts argmax hits at scored positions (MQAR accuracy).
   */
  async lossAndGrad(tokens: Int32Array, targets: Int32Array, B: number, L: number): Promise<{ loss: number; count: number; correct: number; grads: Params }> {
    if (targets.length !== B * L) throw new Error(`lossAndGrad: got ${targets.length} targets, expected ${B * L}`);
    const engine = await this.enginePromise;
    const c = this.config;
    const d = c.dModel;
    const rows = B * L;
    // With the SIMD kernels the logits live in WebAssembly memory (no 64 MiB copies); no other kernel may run
    // until the head's gradient GEMMs have read them (checked: an interleaved caller would clobber them).
    const inWasm = simdOpsAvailable(c.vocabSize);
    const { logits, cache } = await this.forward(tokens, B, L, { keepCache: true, logitsInWasm: inWasm });
    const epoch0 = simdEpoch();
    const ce = crossEntropy(logits!.data, targets, c.vocabSize, true); // logits now hold ∂loss/∂logits
    const grads = zerosLike(this.params);
    const E = this.params['embedding.weight']!;
    // tied head: logits = hf Eᵀ
    const gE = await engine.gemm(logits!, cache!.hf, { transA: true });
    grads['embedding.weight']!.data.set(gE.data);
    const ghf = await engine.gemm(logits!, E);
    if (inWasm && simdEpoch() !== epoch0 + 1) throw new Error('lossAndGrad: another kernel ran while the LM head held the logits in WebAssembly memory (concurrent lossAndGrad calls on one thread are not supported)');
    let g = rmsNormBackward(cache!.final.data, this.params['norm_f.weight']!.data, cache!.rstdF, ghf.data, rows, grads['norm_f.weight']!.data);
    const m = mixerDims(c);
    for (let l = c.nLayers - 1; l >= 0; l--) {
      // r_out = r_in + mixer(norm(r_in))
      const gn = await mixerBackward(engine, m, this.params, mixerPrefix(l), cache!.mixers[l]!, tensor(g, [rows, d]), grads);
      const gr = rmsNormBackward(cache!.resid[l]!.data, this.params[`layers.${l}.norm.weight`]!.data, cache!.normIn[l]!.rstd, gn.data, rows, grads[`layers.${l}.norm.weight`]!.data);
      for (let i = 0; i < g.length; i++) g[i]! += gr[i]!;
    }
    const gEmb = grads['embedding.weight']!.data;
    for (let i = 0; i < rows; i++) {
      const o = tokens[i]! * d;
      for (let j = 0; j < d; j++) gEmb[o + j]! += g[i * d + j]!;
    }
    return { loss: ce.loss, count: ce.count, correct: ce.correct, grads };
  }

  /** Token-by-token decoder carrying each layer's scan state and conv window. */
  decoder(batch: number): Decoder {
    return new Decoder(this, batch);
  }

  /** @internal */
  async engine(): Promise<GemmEngine> {
    return this.enginePromise;
  }
}

export class Decoder {
  private states: MixerState[];

  constructor(private readonly lm: LonghornLM, readonly batch: number) {
    this.states = Array.from({ length: lm.config.nLayers }, () => newMixerState(mixerDims(lm.config), batch));
  }

  /** Feeds one token per sequence; returns next-token logits [batch, V]. */
  async step(tokens: Int32Array): Promise<Tensor> {
    const { config: c, params } = this.lm;
    if (tokens.length !== this.batch) throw new Error(`Decoder.step: got ${tokens.length} tokens for batch ${this.batch}`);
    const engine = await this.lm.engine();
    const d = c.dModel;
    const B = this.batch;
    const E = params['embedding.weight']!;
    const r = zeros([B, d]);
    for (let b = 0; b < B; b++) {
      if (!(tokens[b]! >= 0 && tokens[b]! < c.vocabSize)) throw new Error(`Decoder.step: token ${tokens[b]} outside [0, ${c.vocabSize})`);
      r.data.set(E.data.subarray(tokens[b]! * d, (tokens[b]! + 1) * d), b * d);
    }
    const m = mixerDims(c);
    for (let l = 0; l < c.nLayers; l++) {
      const n = rmsNormForward(r.data, params[`layers.${l}.norm.weight`]!.data, B, c.normEps);
      const out = await mixerStep(engine, m, params, mixerPrefix(l), tensor(n.y, [B, d]), this.states[l]!);
      for (let i = 0; i < r.data.length; i++) r.data[i]! += out.data[i]!;
    }
    const f = rmsNormForward(r.data, params['norm_f.weight']!.data, B, c.normEps);
    return engine.gemm(tensor(f.y, [B, d]), E, { transB: true });
  }
}
