/**
 * The attention baseline the Longhorn comparisons lacked (issue 14): a small LLaMA-style Transformer — pre-RMSNorm
 * residual blocks of causal multi-head attention with rotary positions and a SwiGLU MLP, tied embedding/head —
 * with a hand-written backward, trainable by `train` and evaluated by the MQAR/LM benches like the SSMs.
 * Recipe: Touvron et al. 2023 (LLaMA) as in karpathy/llama2.c `model.py` (parameter names, interleaved rotary
 * pairs, θ = 10000, init N(0, 0.02) with wo/w3 scaled by 1/√(2·n_layers), SwiGLU hidden w2(silu(w1 x) ⊙ w3 x));
 * for MQAR Zoology's harness runs attention with heads = 1 (`--heads 1`).
 *
 * The forward attention is core's fused kernel (GemmEngine.causalAttention, the one the llama2.c model uses) when
 * the engine has it; the backward recomputes each query row's softmax here (`attentionRow`), which is also the
 * forward path of engines without the fused kernel. Parameter count is matched to an SSM by `mlpHidden`.
 */
import { z } from 'zod';
import { type GemmEngine, type Params, type Tensor, Rng, defaultEngine, tensor, zeros, zerosLike } from '@saelab/core';
import { addInto, crossEntropy, linear, linearBackward, rmsNormBackward, rmsNormForward, sigmoid } from './ops.js';

export const TransformerConfigSchema = z
  .object({
    vocabSize: z.number().int().min(2),
    dModel: z.number().int().min(2),
    nLayers: z.number().int().min(1),
    nHeads: z.number().int().min(1).default(1),
    /** SwiGLU hidden width (llama2.c: 4·d·2/3 rounded; here chosen to match an SSM's parameter count). */
    mlpHidden: z.number().int().min(0),
    ropeTheta: z.number().positive().default(10000),
    normEps: z.number().positive().default(1e-5),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.dModel % c.nHeads !== 0 || (c.dModel / c.nHeads) % 2 !== 0) {
      ctx.addIssue({ code: 'custom', path: ['nHeads'], message: `d_model ${c.dModel} must split into ${c.nHeads} heads of even size (rotary pairs)` });
    }
  });
export type TransformerConfigInput = z.input<typeof TransformerConfigSchema>;
export type TransformerConfig = z.output<typeof TransformerConfigSchema> & { kind: 'transformer' };

export function parseTransformerConfig(input: TransformerConfigInput): TransformerConfig {
  return { ...TransformerConfigSchema.parse(input), kind: 'transformer' };
}

export function transformerShapes(c: TransformerConfig): Record<string, number[]> {
  const d = c.dModel;
  const s: Record<string, number[]> = { 'tok_embeddings.weight': [c.vocabSize, d] };
  for (let l = 0; l < c.nLayers; l++) {
    const p = `layers.${l}.`;
    s[p + 'attention_norm.weight'] = [d];
    for (const w of ['wq', 'wk', 'wv', 'wo']) s[p + `attention.${w}.weight`] = [d, d];
    if (c.mlpHidden > 0) {
      s[p + 'ffn_norm.weight'] = [d];
      s[p + 'feed_forward.w1.weight'] = [c.mlpHidden, d];
      s[p + 'feed_forward.w2.weight'] = [d, c.mlpHidden];
      s[p + 'feed_forward.w3.weight'] = [c.mlpHidden, d];
    }
  }
  s['norm.weight'] = [d];
  return s;
}

export function transformerParamCount(c: TransformerConfig): number {
  return Object.values(transformerShapes(c)).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
}

/** The SwiGLU width that brings the parameter count closest to `target` (0 = attention only). */
export function matchedMlpHidden(base: Omit<TransformerConfigInput, 'mlpHidden'>, target: number): number {
  const without = transformerParamCount(parseTransformerConfig({ ...base, mlpHidden: 0 }));
  const perHidden = 3 * base.dModel;
  const extra = target - without - base.nLayers * base.dModel; // ffn_norm gains come with the MLP
  return Math.max(0, Math.round(extra / (perHidden * base.nLayers)));
}

function initTransformer(c: TransformerConfig, seed: number): Params {
  const rng = new Rng(seed);
  const p: Params = {};
  for (const [name, shape] of Object.entries(transformerShapes(c))) {
    const t = zeros(shape);
    if (name.includes('norm')) t.data.fill(1);
    else rng.fillNormal(t.data, /wo\.|w3\./.test(name) ? 0.02 / Math.sqrt(2 * c.nLayers) : 0.02);
    p[name] = t;
  }
  return p;
}

/** Rotary embedding in place on [rows = B·L, H·hs] (interleaved pairs, llama2.c); sign −1 applies the inverse. */
export function rotary(x: Float32Array, B: number, L: number, H: number, hs: number, theta: number, sign: 1 | -1): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < L; t++) {
      const o = (b * L + t) * H * hs;
      for (let i = 0; i < hs; i += 2) {
        const ang = t * Math.pow(theta, -i / hs);
        const cs = Math.cos(ang);
        const sn = sign * Math.sin(ang);
        for (let h = 0; h < H; h++) {
          const j = o + h * hs + i;
          const [x0, x1] = [x[j]!, x[j + 1]!];
          x[j] = x0 * cs - x1 * sn;
          x[j + 1] = x0 * sn + x1 * cs;
        }
      }
    }
  }
}

/** Softmax weights of query row t of (b, h) over keys 0..t (scale 1/√hs), float64, into `w` [t + 1]. */
function attentionRow(q: Float32Array, k: Float32Array, b: number, h: number, t: number, L: number, H: number, hs: number, w: Float64Array): void {
  const qo = ((b * L + t) * H + h) * hs;
  const scale = 1 / Math.sqrt(hs);
  let max = -Infinity;
  for (let s = 0; s <= t; s++) {
    const ko = ((b * L + s) * H + h) * hs;
    let dot = 0;
    for (let i = 0; i < hs; i++) dot += q[qo + i]! * k[ko + i]!;
    w[s] = dot * scale;
    if (w[s]! > max) max = w[s]!;
  }
  let sum = 0;
  for (let s = 0; s <= t; s++) sum += (w[s] = Math.exp(w[s]! - max));
  for (let s = 0; s <= t; s++) w[s]! /= sum;
}

/** Causal attention softmax(q kᵀ/√hs) v, q/k/v [B, L, H, hs]: core's fused kernel when the engine has one. */
export async function causalAttentionForward(engine: GemmEngine, q: Float32Array, k: Float32Array, v: Float32Array, B: number, L: number, H: number, hs: number): Promise<Float32Array> {
  if (engine.causalAttention) return engine.causalAttention(q, k, v, { batch: B, seqLen: L, heads: H, kvHeads: H, headSize: hs });
  const out = new Float32Array(B * L * H * hs);
  const w = new Float64Array(L);
  const acc = new Float64Array(hs);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < L; t++) {
        attentionRow(q, k, b, h, t, L, H, hs, w);
        acc.fill(0);
        for (let s = 0; s <= t; s++) for (let i = 0, vo = ((b * L + s) * H + h) * hs; i < hs; i++) acc[i] += w[s]! * v[vo + i]!;
        out.set(acc, ((b * L + t) * H + h) * hs);
      }
    }
  }
  return out;
}

/**
 * Backward of causal attention (the softmax recomputed per query row): with P the weights and g = ∂L/∂out,
 * ∂v_s = Σ_t P_ts g_t, ∂P_ts = g_t·v_s, ∂S_ts = P_ts (∂P_ts − Σ_s' P_ts' ∂P_ts'), ∂q_t = Σ_s ∂S_ts k_s/√hs,
 * ∂k_s = Σ_t ∂S_ts q_t/√hs.
 */
export function causalAttentionBackward(
  q: Float32Array, k: Float32Array, v: Float32Array, g: Float32Array, B: number, L: number, H: number, hs: number,
): { gq: Float32Array; gk: Float32Array; gv: Float32Array } {
  const gq = new Float32Array(q.length);
  const gk64 = new Float64Array(k.length);
  const gv64 = new Float64Array(v.length);
  const w = new Float64Array(L);
  const dp = new Float64Array(L);
  const scale = 1 / Math.sqrt(hs);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < L; t++) {
        attentionRow(q, k, b, h, t, L, H, hs, w);
        const go = ((b * L + t) * H + h) * hs;
        let dot = 0;
        for (let s = 0; s <= t; s++) {
          const vo = ((b * L + s) * H + h) * hs;
          let d = 0;
          for (let i = 0; i < hs; i++) {
            d += g[go + i]! * v[vo + i]!;
            gv64[vo + i] += w[s]! * g[go + i]!;
          }
          dp[s] = d;
          dot += w[s]! * d;
        }
        for (let s = 0; s <= t; s++) {
          const ds = w[s]! * (dp[s]! - dot) * scale;
          const ko = ((b * L + s) * H + h) * hs;
          for (let i = 0; i < hs; i++) {
            gq[go + i]! += ds * k[ko + i]!;
            gk64[ko + i] += ds * q[go + i]!;
          }
        }
      }
    }
  }
  return { gq, gk: Float32Array.from(gk64), gv: Float32Array.from(gv64) };
}

interface LayerCache {
  resid: Tensor;
  n1: { y: Tensor; rstd: Float32Array };
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  att: Tensor;
  mid: Tensor;
  n2?: { y: Tensor; rstd: Float32Array };
  a1?: Tensor;
  a3?: Tensor;
  hidden?: Tensor;
}

export class TransformerLM {
  readonly config: TransformerConfig;
  private enginePromise: Promise<GemmEngine>;

  constructor(config: TransformerConfigInput, readonly params: Params, engine?: GemmEngine) {
    this.config = parseTransformerConfig(config);
    const shapes = transformerShapes(this.config);
    for (const [name, shape] of Object.entries(shapes)) {
      const t = params[name];
      if (!t || t.shape.join() !== shape.join()) throw new Error(`TransformerLM: parameter '${name}' missing or not [${shape.join(', ')}]`);
    }
    for (const name of Object.keys(params)) if (!shapes[name]) throw new Error(`TransformerLM: unexpected parameter '${name}'`);
    this.enginePromise = engine ? Promise.resolve(engine) : defaultEngine();
  }

  static create(config: TransformerConfigInput, seed = 0, engine?: GemmEngine): TransformerLM {
    return new TransformerLM(config, initTransformer(parseTransformerConfig(config), seed), engine);
  }

  /** Logits [B·L, V] (and the backward cache). */
  async forward(tokens: Int32Array, B: number, L: number, keepCache = false): Promise<{ logits: Tensor; cache?: { layers: LayerCache[]; final: Tensor; hf: Tensor; rstdF: Float32Array } }> {
    const c = this.config;
    if (tokens.length !== B * L) throw new Error(`TransformerLM: got ${tokens.length} tokens, expected batch·seqLen = ${B * L}`);
    for (let i = 0; i < tokens.length; i++) if (!(tokens[i]! >= 0 && tokens[i]! < c.vocabSize)) throw new Error(`TransformerLM: token ${tokens[i]} at ${i} outside [0, ${c.vocabSize})`);
    const engine = await this.enginePromise;
    const d = c.dModel;
    const H = c.nHeads;
    const hs = d / H;
    const rows = B * L;
    const P = (n: string) => this.params[n]!;
    const E = P('tok_embeddings.weight');
    let r = zeros([rows, d]);
    for (let i = 0; i < rows; i++) r.data.set(E.data.subarray(tokens[i]! * d, (tokens[i]! + 1) * d), i * d);
    const layers: LayerCache[] = [];
    for (let l = 0; l < c.nLayers; l++) {
      const p = `layers.${l}.`;
      const n1 = rmsNormForward(r.data, P(p + 'attention_norm.weight').data, rows, c.normEps);
      const x1 = tensor(n1.y, [rows, d]);
      const q = (await linear(engine, x1, P(p + 'attention.wq.weight'))).data;
      const k = (await linear(engine, x1, P(p + 'attention.wk.weight'))).data;
      const v = (await linear(engine, x1, P(p + 'attention.wv.weight'))).data;
      rotary(q, B, L, H, hs, c.ropeTheta, 1);
      rotary(k, B, L, H, hs, c.ropeTheta, 1);
      const att = tensor(await causalAttentionForward(engine, q, k, v, B, L, H, hs), [rows, d]);
      const o = await linear(engine, att, P(p + 'attention.wo.weight'));
      const mid = zeros([rows, d]);
      for (let i = 0; i < mid.data.length; i++) mid.data[i] = r.data[i]! + o.data[i]!;
      const lc: LayerCache = { resid: r, n1: { y: x1, rstd: n1.rstd }, q, k, v, att, mid };
      r = mid;
      if (c.mlpHidden > 0) {
        const n2 = rmsNormForward(mid.data, P(p + 'ffn_norm.weight').data, rows, c.normEps);
        const x2 = tensor(n2.y, [rows, d]);
        const a1 = await linear(engine, x2, P(p + 'feed_forward.w1.weight'));
        const a3 = await linear(engine, x2, P(p + 'feed_forward.w3.weight'));
        const hidden = zeros(a1.shape);
        for (let i = 0; i < hidden.data.length; i++) hidden.data[i] = a1.data[i]! * sigmoid(a1.data[i]!) * a3.data[i]!; // silu(w1 x) ⊙ w3 x
        const f = await linear(engine, hidden, P(p + 'feed_forward.w2.weight'));
        const out = zeros([rows, d]);
        for (let i = 0; i < out.data.length; i++) out.data[i] = mid.data[i]! + f.data[i]!;
        Object.assign(lc, { n2: { y: x2, rstd: n2.rstd }, a1, a3, hidden });
        r = out;
      }
      if (keepCache) layers.push(lc);
    }
    const f = rmsNormForward(r.data, P('norm.weight').data, rows, c.normEps);
    const hf = tensor(f.y, [rows, d]);
    const logits = await engine.gemm(hf, E, { transB: true });
    return { logits, cache: keepCache ? { layers, final: r, hf, rstdF: f.rstd } : undefined };
  }

  /** Mean cross-entropy over positions with target ≠ IGNORE and its gradient w.r.t. every parameter. */
  async lossAndGrad(tokens: Int32Array, targets: Int32Array, B: number, L: number): Promise<{ loss: number; count: number; correct: number; grads: Params }> {
    if (targets.length !== B * L) throw new Error(`lossAndGrad: got ${targets.length} targets, expected ${B * L}`);
    const c = this.config;
    const engine = await this.enginePromise;
    const d = c.dModel;
    const H = c.nHeads;
    const hs = d / H;
    const rows = B * L;
    const P = (n: string) => this.params[n]!;
    const { logits, cache } = await this.forward(tokens, B, L, true);
    const ce = crossEntropy(logits.data, targets, c.vocabSize, true); // logits now hold ∂loss/∂logits
    const grads = zerosLike(this.params);
    const G = (n: string) => grads[n]!.data;
    const E = P('tok_embeddings.weight');
    addInto(G('tok_embeddings.weight'), (await engine.gemm(logits, cache!.hf, { transA: true })).data);
    const ghf = await engine.gemm(logits, E);
    let g = rmsNormBackward(cache!.final.data, P('norm.weight').data, cache!.rstdF, ghf.data, rows, G('norm.weight'));
    for (let l = c.nLayers - 1; l >= 0; l--) {
      const p = `layers.${l}.`;
      const lc = cache!.layers[l]!;
      if (c.mlpHidden > 0) {
        // out = mid + w2 (silu(a1) ⊙ a3)
        const gy = tensor(g, [rows, d]);
        const o2 = await linearBackward(engine, lc.hidden!, P(p + 'feed_forward.w2.weight'), gy);
        addInto(G(p + 'feed_forward.w2.weight'), o2.gw.data);
        const ga1 = zeros(lc.a1!.shape);
        const ga3 = zeros(lc.a3!.shape);
        for (let i = 0; i < ga1.data.length; i++) {
          const a = lc.a1!.data[i]!;
          const s = sigmoid(a);
          ga3.data[i] = o2.gx.data[i]! * a * s;
          ga1.data[i] = o2.gx.data[i]! * lc.a3!.data[i]! * s * (1 + a * (1 - s)); // SiLU' = σ(1 + a(1 − σ))
        }
        const o1 = await linearBackward(engine, lc.n2!.y, P(p + 'feed_forward.w1.weight'), ga1);
        const o3 = await linearBackward(engine, lc.n2!.y, P(p + 'feed_forward.w3.weight'), ga3);
        addInto(G(p + 'feed_forward.w1.weight'), o1.gw.data);
        addInto(G(p + 'feed_forward.w3.weight'), o3.gw.data);
        addInto(o1.gx.data, o3.gx.data);
        const gm = rmsNormBackward(lc.mid.data, P(p + 'ffn_norm.weight').data, lc.n2!.rstd, o1.gx.data, rows, G(p + 'ffn_norm.weight'));
        for (let i = 0; i < g.length; i++) g[i]! += gm[i]!;
      }
      // mid = resid + wo · attention(rot(wq x), rot(wk x), wv x)
      const oo = await linearBackward(engine, lc.att, P(p + 'attention.wo.weight'), tensor(g, [rows, d]));
      addInto(G(p + 'attention.wo.weight'), oo.gw.data);
      const ga = causalAttentionBackward(lc.q, lc.k, lc.v, oo.gx.data, B, L, H, hs);
      rotary(ga.gq, B, L, H, hs, c.ropeTheta, -1); // the rotation is orthogonal: its adjoint is the inverse
      rotary(ga.gk, B, L, H, hs, c.ropeTheta, -1);
      const gx = new Float32Array(rows * d);
      for (const [w, gw] of [['wq', ga.gq], ['wk', ga.gk], ['wv', ga.gv]] as const) {
        const o = await linearBackward(engine, lc.n1.y, P(p + `attention.${w}.weight`), tensor(gw, [rows, d]));
        addInto(G(p + `attention.${w}.weight`), o.gw.data);
        addInto(gx, o.gx.data);
      }
      const gr = rmsNormBackward(lc.resid.data, P(p + 'attention_norm.weight').data, lc.n1.rstd, gx, rows, G(p + 'attention_norm.weight'));
      for (let i = 0; i < g.length; i++) g[i]! += gr[i]!;
    }
    const gE = G('tok_embeddings.weight');
    for (let i = 0; i < rows; i++) for (let j = 0, o = tokens[i]! * d; j < d; j++) gE[o + j]! += g[i * d + j]!;
    return { loss: ce.loss, count: ce.count, correct: ce.correct, grads };
  }
}

