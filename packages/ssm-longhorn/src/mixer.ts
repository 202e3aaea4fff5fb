/**
 * The Mamba-style mixer block used by Longhorn (official code: in_proj → causal conv1d → SiLU → x_proj → dt_head
 * → selective scan + D skip → SiLU(z) gate → out_proj), forward, backward and a one-token recurrent step.
 * Parameter names and shapes are the official code's (PyTorch layouts), relative to `layers.{i}.mixer.`:
 *   in_proj.weight [2·d_inner, d_model]; conv1d.weight [d_inner, 1, d_conv], conv1d.bias [d_inner];
 *   x_proj.weight [dt_rank + 2n, d_inner]; dt_head.weight [d_inner, dt_rank], dt_head.bias [d_inner]
 *   (Mamba: dt_proj.*); A_log [d_inner, n] (Mamba only); D [d_inner]; out_proj.weight [d_model, d_inner].
 *
 * Head-tied variants (Mamba2, DeltaNet, Gated DeltaNet) keep this block and change only the transition: the d_inner
 * state rows are grouped into H = d_inner / head_dim heads that share one scalar per head and step — Δ and A
 * (Mamba2, `mamba2_simple.py`: dt and A_log per head, ngroups = 1 so B = k, C = q are shared by all heads, as here),
 * β (DeltaNet: fla `b_proj`, one β per head) and the gate α = exp(A softplus(a_proj(·) + dt_bias)) (Gated DeltaNet:
 * fla `gated_deltanet.py`). Their coefficient projections read δ (the rank-dt_rank slice of x_proj) like Longhorn's
 * dt_head; the value written into the state is x (in_proj → conv → SiLU, the block's value projection).
 *   Mamba2: dt_proj.weight [H, dt_rank], dt_proj.bias [H], A_log [H]
 *   DeltaNet: beta_proj.weight [H, dt_rank], beta_proj.bias [H]
 *   Gated DeltaNet: beta_proj.* as DeltaNet, a_proj.weight [H, dt_rank], a_proj.bias [H] (fla's dt_bias), A_log [H]
 * Departures from the reference blocks, so that the comparison isolates the transition: no conv on k and q, no
 * gated RMSNorm before out_proj, D per channel (Mamba2's default is per head), k and q shared by the heads.
 */
import { type GemmEngine, type Params, type Rng, type Tensor, tensor, zeros } from '@saelab/core';
import { type ScanSaved, type Transition, scanStep } from './scan.js';
import { scanBackwardParallel, scanForwardParallel } from './scan-pool.js';
import { addInto, causalConvBackward, causalConvForward, copyBlock, linear, linearBackward, sigmoid, silu } from './ops.js';
import { convSiluBackwardSimd, convSiluForwardSimd, dtBackwardSimd, dtForwardSimd, gateBackwardSimd, gateForwardSimd, simdOpsAvailable } from './ops-simd.js';

export interface MixerDims {
  dModel: number;
  dInner: number;
  dState: number;
  dtRank: number;
  dConv: number;
  variant: Transition;
  scanChunk: number;
  /** Channels per head of the head-tied variants (mamba2, deltanet, gated-deltanet); divides d_inner. */
  headDim: number;
  /** Mamba, Mamba2: the initial Δ = softplus(dt bias) is log-uniform in this range (reference: [1e-3, 1e-1]). */
  dtInit: readonly [number, number];
}

/** Variants whose coefficient is one scalar per head (rows tied into heads of head_dim channels). */
export const isHeaded = (variant: Transition) => variant === 'mamba2' || variant === 'deltanet' || variant === 'gated-deltanet';

/** Number of heads (head-tied variants) or d_inner (one coefficient per channel). */
export const coefWidth = (m: MixerDims) => (isHeaded(m.variant) ? m.dInner / m.headDim : m.dInner);

/** The coefficient linear is `dt_head` in Longhorn's code, `dt_proj` in Mamba's and Mamba2's, `beta_proj` (fla: b_proj) for the delta rules. */
export const dtName = (variant: Transition) =>
  variant === 'mamba' || variant === 'mamba2' ? 'dt_proj' : variant === 'deltanet' || variant === 'gated-deltanet' ? 'beta_proj' : 'dt_head';

/** Broadcasts per-head values [rows, H] to the channels [rows, H·P]. */
export function broadcastHeads(v: Float32Array, rows: number, H: number, P: number): Float32Array {
  const out = new Float32Array(rows * H * P);
  for (let r = 0; r < rows; r++) for (let h = 0; h < H; h++) out.fill(v[r * H + h]!, (r * H + h) * P, (r * H + h + 1) * P);
  return out;
}

/** The adjoint of `broadcastHeads`: sums [rows, H·P] over each head's P channels. */
export function sumHeads(g: ArrayLike<number>, rows: number, H: number, P: number): Float32Array {
  const out = new Float32Array(rows * H);
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < H; h++) {
      let s = 0;
      for (let p = 0, o = (r * H + h) * P; p < P; p++) s += g[o + p]!;
      out[r * H + h] = s;
    }
  }
  return out;
}

/** Parameter names (relative to the mixer prefix) with shapes. */
export function mixerShapes(m: MixerDims): Record<string, number[]> {
  const dt = dtName(m.variant);
  const w = coefWidth(m);
  const s: Record<string, number[]> = {
    'in_proj.weight': [2 * m.dInner, m.dModel],
    'conv1d.weight': [m.dInner, 1, m.dConv],
    'conv1d.bias': [m.dInner],
    'x_proj.weight': [m.dtRank + 2 * m.dState, m.dInner],
    [`${dt}.weight`]: [w, m.dtRank],
    [`${dt}.bias`]: [w],
    D: [m.dInner],
    'out_proj.weight': [m.dModel, m.dInner],
  };
  if (m.variant === 'gated-deltanet') {
    s['a_proj.weight'] = [w, m.dtRank];
    s['a_proj.bias'] = [w];
  }
  if (m.variant === 'mamba') s.A_log = [m.dInner, m.dState];
  if (m.variant === 'mamba2' || m.variant === 'gated-deltanet') s.A_log = [w];
  return s;
}

/**
 * Initialisation as in the official code: PyTorch defaults (U(±1/√fan_in)) for the linears and conv; dt weight
 * U(±dt_rank^−½); Longhorn's dt bias 0 (β ≈ ½); Mamba's dt bias = softplus⁻¹(log-uniform[1e-3, 1e-1]) and
 * S4D-real A_ij = −(j+1); D = 1; out_proj scaled by 1/√n_layer (GPT-2 style residual rescaling).
 */
export function initMixer(m: MixerDims, nLayers: number, rng: Rng, prefix: string, into: Params): void {
  const shapes = mixerShapes(m);
  const uni = (name: string, bound: number) => {
    const t = zeros(shapes[name]!);
    rng.fillUniform(t.data, -bound, bound);
    into[prefix + name] = t;
  };
  const uniAny = (name: string, shape: number[], bound: number) => {
    const t = zeros(shape);
    rng.fillUniform(t.data, -bound, bound);
    into[prefix + name] = t;
  };
  const dt = dtName(m.variant);
  uni('in_proj.weight', 1 / Math.sqrt(m.dModel));
  uni('conv1d.weight', 1 / Math.sqrt(m.dConv));
  uni('conv1d.bias', 1 / Math.sqrt(m.dConv));
  uni('x_proj.weight', 1 / Math.sqrt(m.dInner));
  uni(`${dt}.weight`, 1 / Math.sqrt(m.dtRank));
  uni('out_proj.weight', 1 / Math.sqrt(m.dInner) / Math.sqrt(nLayers));
  const w = coefWidth(m);
  const bias = zeros([w]);
  /** softplus⁻¹ of a log-uniform draw in `range` (Mamba's dt init; floor 1e-4 as dt_init_floor). */
  const dtBias = (range: readonly [number, number]) => {
    const dtv = Math.max(1e-4, Math.exp(Math.log(range[0]) + rng.uniform() * (Math.log(range[1]) - Math.log(range[0]))));
    return dtv + Math.log(-Math.expm1(-dtv)); // inverse softplus
  };
  if (m.variant === 'mamba') {
    for (let i = 0; i < m.dInner; i++) bias.data[i] = dtBias(m.dtInit);
    const aLog = zeros([m.dInner, m.dState]);
    for (let i = 0; i < m.dInner; i++) for (let j = 0; j < m.dState; j++) aLog.data[i * m.dState + j] = Math.log(j + 1);
    into[prefix + 'A_log'] = aLog;
  }
  if (m.variant === 'mamba2') for (let h = 0; h < w; h++) bias.data[h] = dtBias(m.dtInit);
  // Mamba2 and Gated DeltaNet: A uniform in [1, 16] per head (mamba2_simple.py A_init_range; fla uniform(0, 16)).
  if (m.variant === 'mamba2' || m.variant === 'gated-deltanet') {
    const aLog = zeros([w]);
    for (let h = 0; h < w; h++) aLog.data[h] = Math.log(1 + 15 * rng.uniform());
    into[prefix + 'A_log'] = aLog;
  }
  if (m.variant === 'gated-deltanet') {
    // fla gated_deltanet: a_proj ~ Linear (no bias) + dt_bias = softplus⁻¹(log-uniform [1e-3, 1e-1]).
    uniAny('a_proj.weight', [w, m.dtRank], 1 / Math.sqrt(m.dtRank));
    const ab = zeros([w]);
    for (let h = 0; h < w; h++) ab.data[h] = dtBias([1e-3, 1e-1]);
    into[prefix + 'a_proj.bias'] = ab;
  }
  into[prefix + `${dt}.bias`] = bias;
  into[prefix + 'D'] = tensor(new Float32Array(m.dInner).fill(1), [m.dInner]);
}

/** Intermediate values kept for the backward pass. */
export interface MixerCache {
  B: number;
  L: number;
  h: Tensor;
  xz: Tensor;
  xc: Float32Array;
  /** sigmoid(xc) and sigmoid(z), kept so backward needs no exp. */
  sigXc: Float32Array;
  sigZ: Float32Array;
  xs: Tensor;
  delta: Tensor;
  k: Float32Array;
  q: Float32Array;
  zb: Float32Array;
  /** Gated DeltaNet: the decay pre-activation per channel. */
  zA?: Float32Array;
  scan: ScanSaved;
  y: Float32Array;
  yg: Tensor;
}

const P = (params: Params, prefix: string, name: string): Tensor => {
  const t = params[prefix + name];
  if (!t) throw new Error(`missing parameter ${prefix + name}`);
  return t;
};

/** A_log as the scan reads it: [d_inner, n] (Mamba), per head broadcast to [d_inner] (Mamba2, Gated DeltaNet), else none. */
function scanALog(m: MixerDims, params: Params, prefix: string): Float32Array | undefined {
  if (m.variant === 'mamba') return P(params, prefix, 'A_log').data;
  if (m.variant === 'mamba2' || m.variant === 'gated-deltanet') return broadcastHeads(P(params, prefix, 'A_log').data, 1, coefWidth(m), m.headDim);
  return undefined;
}

/** Splits x_proj's output [rows, R+2n] into δ [rows, R], k [rows, n], q [rows, n]. */
function splitDbl(dbl: Float32Array, rows: number, R: number, n: number) {
  const w = R + 2 * n;
  const delta = new Float32Array(rows * R);
  const k = new Float32Array(rows * n);
  const q = new Float32Array(rows * n);
  copyBlock(dbl, w, 0, delta, R, 0, rows, R);
  copyBlock(dbl, w, R, k, n, 0, rows, n);
  copyBlock(dbl, w, R + n, q, n, 0, rows, n);
  return { delta, k, q };
}

/** Mixer forward on h [B·L, d_model] → out [B·L, d_model]. */
export async function mixerForward(
  engine: GemmEngine, m: MixerDims, params: Params, prefix: string, h: Tensor, B: number, L: number,
): Promise<{ out: Tensor; cache: MixerCache }> {
  const { dInner: di, dState: n, dtRank: R } = m;
  const rows = B * L;
  const dt = dtName(m.variant);
  // 1. [x, z] = h W_inᵀ
  const xz = await linear(engine, h, P(params, prefix, 'in_proj.weight'));
  // 2. x = SiLU(conv1d(x))
  const simd = simdOpsAvailable(di);
  const convW = P(params, prefix, 'conv1d.weight').data;
  const convB = P(params, prefix, 'conv1d.bias').data;
  let xc: Float32Array;
  let sigXc: Float32Array;
  let xs: Tensor;
  if (simd) {
    const r = convSiluForwardSimd(xz.data, 2 * di, convW, convB, B, L);
    [xc, sigXc, xs] = [r.xc, r.sig, tensor(r.xs, [rows, di])];
  } else {
    xc = causalConvForward(xz.data, 2 * di, 0, convW, convB, B, L);
    xs = zeros([rows, di]);
    sigXc = new Float32Array(rows * di);
    for (let i = 0; i < xc.length; i++) {
      sigXc[i] = sigmoid(xc[i]!);
      xs.data[i] = xc[i]! * sigXc[i]!;
    }
  }
  // 3. [δ, k, q] = x W_xᵀ
  const dbl = await linear(engine, xs, P(params, prefix, 'x_proj.weight'));
  const { delta, k, q } = splitDbl(dbl.data, rows, R, n);
  const deltaT = tensor(delta, [rows, R]);
  // 4. z_β = δ W_dtᵀ + b_dt (rank dt_rank: a SIMD loop, or a GEMM with the bias folded in); per head for the
  //    head-tied variants, broadcast to the head's channels
  const Wdt = P(params, prefix, `${dt}.weight`);
  const bdt = P(params, prefix, `${dt}.bias`);
  const headed = isHeaded(m.variant);
  const H = coefWidth(m);
  let zb: Float32Array;
  let zA: Float32Array | undefined;
  if (headed) {
    zb = broadcastHeads((await engine.gemm(deltaT, Wdt, { transB: true, bias: bdt })).data, rows, H, m.headDim);
    if (m.variant === 'gated-deltanet') {
      const za = await engine.gemm(deltaT, P(params, prefix, 'a_proj.weight'), { transB: true, bias: P(params, prefix, 'a_proj.bias') });
      zA = broadcastHeads(za.data, rows, H, m.headDim);
    }
  } else {
    zb = simd ? dtForwardSimd(delta, Wdt.data, bdt.data, rows) : (await engine.gemm(deltaT, Wdt, { transB: true, bias: bdt })).data;
  }
  // 5. y = scan(x, k, q, z_β) + D ⊙ x
  const shape = { batch: B, seqLen: L, dInner: di, dState: n };
  const aLog = scanALog(m, params, prefix);
  const { y: yScan, saved } = await scanForwardParallel(m.variant, shape, { x: xs.data, z: zb, k, q, aLog, zA }, { chunk: m.scanChunk });
  const y = yScan as Float32Array;
  const D = P(params, prefix, 'D').data;
  // 6. gate and project out
  let yg: Tensor;
  let sigZ: Float32Array;
  if (simd) {
    const r = gateForwardSimd(y, xs.data, D, xz.data, rows);
    [yg, sigZ] = [tensor(r.yg, [rows, di]), r.sigZ];
  } else {
    yg = zeros([rows, di]);
    sigZ = new Float32Array(rows * di);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < di; i++) {
        const o = r * di + i;
        const zv = xz.data[r * 2 * di + di + i]!;
        sigZ[o] = sigmoid(zv);
        y[o]! += D[i]! * xs.data[o]!;
        yg.data[o] = y[o]! * (zv * sigZ[o]!);
      }
    }
  }
  const out = await linear(engine, yg, P(params, prefix, 'out_proj.weight'));
  return { out, cache: { B, L, h, xz, xc, sigXc, sigZ, xs, delta: deltaT, k, q, zb, zA, scan: saved, y, yg } };
}

/** Backward of y = δ Wᵀ + b for the linear `name` (out width w): accumulates ∂W, ∂b into grads, returns ∂δ. */
async function linearWithBiasBackward(
  engine: GemmEngine, delta: Tensor, params: Params, grads: Params, prefix: string, name: string, gy: Float32Array, w: number,
): Promise<Float32Array> {
  const rows = delta.shape[0]!;
  const o = await linearBackward(engine, delta, P(params, prefix, `${name}.weight`), tensor(gy, [rows, w]));
  addInto(grads[prefix + `${name}.weight`]!.data, o.gw.data);
  const gb = new Float64Array(w);
  for (let r = 0; r < rows; r++) for (let i = 0; i < w; i++) gb[i] += gy[r * w + i]!;
  const gbp = grads[prefix + `${name}.bias`]!.data;
  for (let i = 0; i < w; i++) gbp[i]! += gb[i]!;
  return o.gx.data;
}

/** Mixer backward: accumulates parameter gradients into `grads` (same names) and returns ∂loss/∂h. */
export async function mixerBackward(
  engine: GemmEngine, m: MixerDims, params: Params, prefix: string, c: MixerCache, gout: Tensor, grads: Params,
): Promise<Tensor> {
  const { dInner: di, dState: n, dtRank: R } = m;
  const rows = c.B * c.L;
  const dt = dtName(m.variant);
  const G = (name: string) => grads[prefix + name]!.data;
  // 6. out = yg W_outᵀ; yg = y ⊙ SiLU(z)
  const o6 = await linearBackward(engine, c.yg, P(params, prefix, 'out_proj.weight'), gout);
  addInto(G('out_proj.weight'), o6.gw.data);
  const gxz = zeros([rows, 2 * di]);
  const simd = simdOpsAvailable(di);
  let gy: Float32Array;
  if (simd) {
    const r = gateBackwardSimd(o6.gx.data, c.xz.data, c.sigZ, c.y, rows, di);
    gy = r.gy;
    copyBlock(r.gz, di, 0, gxz.data, 2 * di, di, rows, di);
  } else {
    gy = new Float32Array(rows * di);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < di; i++) {
        const o = r * di + i;
        const zv = c.xz.data[r * 2 * di + di + i]!;
        const sz = c.sigZ[o]!;
        const g = o6.gx.data[o]!;
        gy[o] = g * zv * sz;
        gxz.data[r * 2 * di + di + i] = g * c.y[o]! * sz * (1 + zv * (1 - sz)); // SiLU' = σ(1 + z(1 − σ))
      }
    }
  }
  // 5. y = scan + D ⊙ x
  const D = P(params, prefix, 'D').data;
  const gD = new Float64Array(di);
  const aLog = scanALog(m, params, prefix);
  const sg = await scanBackwardParallel({ x: c.xs.data, z: c.zb, k: c.k, q: c.q, aLog, zA: c.zA }, c.scan, gy);
  const gxs = sg.gx as Float32Array;
  for (let r = 0; r < rows; r++) {
    for (let i = 0, o = r * di; i < di; i++, o++) {
      gD[i] += gy[o]! * c.xs.data[o]!;
      gxs[o]! += gy[o]! * D[i]!;
    }
  }
  const gDp = G('D');
  for (let i = 0; i < di; i++) gDp[i]! += gD[i]!;
  const headed = isHeaded(m.variant);
  const H = coefWidth(m);
  if (m.variant === 'mamba') addInto(G('A_log'), sg.gALog as Float32Array);
  else if (aLog) addInto(G('A_log'), sumHeads(sg.gALog!, 1, H, m.headDim));
  // 4. z_β = δ W_dtᵀ + b (per head: the broadcast's adjoint sums each head's channels)
  let gdelta: Float32Array;
  if (headed) {
    gdelta = await linearWithBiasBackward(engine, c.delta, params, grads, prefix, dt, sumHeads(sg.gz, rows, H, m.headDim), H);
    if (m.variant === 'gated-deltanet') addInto(gdelta, await linearWithBiasBackward(engine, c.delta, params, grads, prefix, 'a_proj', sumHeads(sg.gzA!, rows, H, m.headDim), H));
  } else if (simd) {
    gdelta = dtBackwardSimd(c.delta.data, P(params, prefix, `${dt}.weight`).data, sg.gz as Float32Array, rows, G(`${dt}.weight`), G(`${dt}.bias`));
  } else {
    gdelta = await linearWithBiasBackward(engine, c.delta, params, grads, prefix, dt, sg.gz as Float32Array, di);
  }
  // 3. [δ, k, q] = x W_xᵀ
  const w = R + 2 * n;
  const gdbl = zeros([rows, w]);
  const gk = sg.gk as Float32Array;
  const gq = sg.gq as Float32Array;
  copyBlock(gdelta, R, 0, gdbl.data, w, 0, rows, R);
  copyBlock(gk, n, 0, gdbl.data, w, R, rows, n);
  copyBlock(gq, n, 0, gdbl.data, w, R + n, rows, n);
  const o3 = await linearBackward(engine, c.xs, P(params, prefix, 'x_proj.weight'), gdbl);
  addInto(G('x_proj.weight'), o3.gw.data);
  addInto(gxs, o3.gx.data);
  // 2. SiLU and conv (writes ∂x into the x half of gxz)
  const convW = P(params, prefix, 'conv1d.weight').data;
  if (simd) {
    const gin = convSiluBackwardSimd(c.xz.data, 2 * di, convW, gxs, c.xc, c.sigXc, c.B, c.L, G('conv1d.weight'), G('conv1d.bias'));
    copyBlock(gin, di, 0, gxz.data, 2 * di, 0, rows, di);
  } else {
    for (let o = 0; o < gxs.length; o++) {
      const sx = c.sigXc[o]!;
      gxs[o]! *= sx * (1 + c.xc[o]! * (1 - sx));
    }
    causalConvBackward(c.xz.data, 2 * di, 0, convW, gxs, c.B, c.L, gxz.data, G('conv1d.weight'), G('conv1d.bias'));
  }
  // 1. [x, z] = h W_inᵀ
  const o1 = await linearBackward(engine, c.h, P(params, prefix, 'in_proj.weight'), gxz);
  addInto(G('in_proj.weight'), o1.gw.data);
  return o1.gx;
}

/** Recurrent state of one mixer for B sequences: S [B, d_inner, n] and the last d_conv−1 conv inputs. */
export interface MixerState {
  S: Float64Array;
  /** [B, d_conv − 1, d_inner], oldest first. */
  window: Float32Array;
}

export function newMixerState(m: MixerDims, B: number): MixerState {
  return { S: new Float64Array(B * m.dInner * m.dState), window: new Float32Array(B * (m.dConv - 1) * m.dInner) };
}

/** One token per sequence: h [B, d_model] → out [B, d_model], advancing `state`. Same arithmetic as forward. */
export async function mixerStep(
  engine: GemmEngine, m: MixerDims, params: Params, prefix: string, h: Tensor, state: MixerState,
): Promise<Tensor> {
  const { dInner: di, dState: n, dtRank: R, dConv: K } = m;
  const B = h.shape[0]!;
  const dt = dtName(m.variant);
  const xz = await linear(engine, h, P(params, prefix, 'in_proj.weight'));
  // Conv over [window, current] as a length-K sequence; its last output is this step's.
  const seq = new Float32Array(B * K * 2 * di);
  for (let b = 0; b < B; b++) {
    for (let w = 0; w < K - 1; w++) seq.set(state.window.subarray((b * (K - 1) + w) * di, (b * (K - 1) + w + 1) * di), (b * K + w) * 2 * di);
    seq.set(xz.data.subarray(b * 2 * di, b * 2 * di + di), (b * K + K - 1) * 2 * di);
  }
  const conv = causalConvForward(seq, 2 * di, 0, P(params, prefix, 'conv1d.weight').data, P(params, prefix, 'conv1d.bias').data, B, K);
  const xs = zeros([B, di]);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < di; i++) xs.data[b * di + i] = silu(conv[(b * K + K - 1) * di + i]!);
    // shift the window: drop the oldest, append this step's x
    const win = state.window.subarray(b * (K - 1) * di, (b + 1) * (K - 1) * di);
    win.copyWithin(0, di);
    win.set(xz.data.subarray(b * 2 * di, b * 2 * di + di), (K - 2) * di);
  }
  const dbl = await linear(engine, xs, P(params, prefix, 'x_proj.weight'));
  const { delta, k, q } = splitDbl(dbl.data, B, R, n);
  const deltaT = tensor(delta, [B, R]);
  const coefOut = async (name: string) => {
    const v = (await linear(engine, deltaT, P(params, prefix, `${name}.weight`))).data;
    const bias = P(params, prefix, `${name}.bias`).data;
    const w = bias.length;
    for (let b = 0; b < B; b++) for (let i = 0; i < w; i++) v[b * w + i]! += bias[i]!;
    return isHeaded(m.variant) ? broadcastHeads(v, B, w, m.headDim) : v;
  };
  const zb = await coefOut(dt);
  const zA = m.variant === 'gated-deltanet' ? await coefOut('a_proj') : undefined;
  const y = scanStep(m.variant, { batch: B, dInner: di, dState: n }, state.S, { x: xs.data, z: zb, k, q, aLog: scanALog(m, params, prefix), zA });
  const D = P(params, prefix, 'D').data;
  const yg = zeros([B, di]);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < di; i++) {
      const o = b * di + i;
      yg.data[o] = (y[o]! + D[i]! * xs.data[o]!) * silu(xz.data[b * 2 * di + di + i]!);
    }
  }
  return linear(engine, yg, P(params, prefix, 'out_proj.weight'));
}
