/**
 * Small fused ops of the Mamba/Longhorn block with their hand-written backward passes: SiLU, RMSNorm, causal
 * depthwise conv1d, linear layers (PyTorch layout W [out, in], on the GEMM engine) and masked cross-entropy.
 * All operate on row-major [rows, cols] Float32Arrays; reductions accumulate in float64.
 */
import type { GemmEngine, Tensor } from '@saelab/core';
import { crossEntropySimd, simdOpsAvailable } from './ops-simd.js';

export const sigmoid = (u: number) => 1 / (1 + Math.exp(-u));
export const silu = (u: number) => u / (1 + Math.exp(-u));
/** d/du u·σ(u) = σ(u)(1 + u(1 − σ(u))). */
export const siluGrad = (u: number) => {
  const s = sigmoid(u);
  return s * (1 + u * (1 - s));
};

/** y = x Wᵀ for W [out, in] (PyTorch nn.Linear layout). */
export function linear(engine: GemmEngine, x: Tensor, w: Tensor): Promise<Tensor> {
  return engine.gemm(x, w, { transB: true });
}

/** Backward of `linear`: gx = gy W, gW = gyᵀ x. */
export async function linearBackward(engine: GemmEngine, x: Tensor, w: Tensor, gy: Tensor): Promise<{ gx: Tensor; gw: Tensor }> {
  const [gx, gw] = [await engine.gemm(gy, w), await engine.gemm(gy, x, { transA: true })];
  return { gx, gw };
}

/**
 * Copies a [rows, width] block between row-major matrices: dst[r, dstOff + j] = src[r, srcOff + j] (row lengths
 * srcStride, dstStride). A plain loop: a `subarray` view per row would allocate rows × objects per call.
 */
export function copyBlock(
  src: Float32Array, srcStride: number, srcOff: number, dst: Float32Array, dstStride: number, dstOff: number, rows: number, width: number,
): void {
  for (let r = 0; r < rows; r++) {
    const s = r * srcStride + srcOff;
    const d = r * dstStride + dstOff;
    for (let j = 0; j < width; j++) dst[d + j] = src[s + j]!;
  }
}

/** Adds b into a (same length), in place. */
export function addInto(a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
}

/** RMSNorm (Zhang & Sennrich 2019): y = x / sqrt(mean(x²) + eps) ⊙ w. Returns y and 1/rms per row. */
export function rmsNormForward(x: Float32Array, w: Float32Array, rows: number, eps: number): { y: Float32Array; rstd: Float32Array } {
  const d = w.length;
  const y = new Float32Array(rows * d);
  const rstd = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += x[r * d + j]! * x[r * d + j]!;
    const s = 1 / Math.sqrt(ss / d + eps);
    rstd[r] = s;
    for (let j = 0; j < d; j++) y[r * d + j] = x[r * d + j]! * s * w[j]!;
  }
  return { y, rstd };
}

/** gx = rstd (ĝ − x̂ mean(ĝ ⊙ x̂)) with ĝ = g ⊙ w, x̂ = x·rstd; gw += Σ_rows g ⊙ x̂. */
export function rmsNormBackward(
  x: Float32Array, w: Float32Array, rstd: Float32Array, gy: Float32Array, rows: number, gw: Float32Array,
): Float32Array {
  const d = w.length;
  const gx = new Float32Array(rows * d);
  const gwAcc = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    const s = rstd[r]!;
    let dot = 0;
    for (let j = 0; j < d; j++) {
      const xh = x[r * d + j]! * s;
      gwAcc[j] += gy[r * d + j]! * xh;
      dot += gy[r * d + j]! * w[j]! * xh;
    }
    dot /= d;
    for (let j = 0; j < d; j++) gx[r * d + j] = s * (gy[r * d + j]! * w[j]! - x[r * d + j]! * s * dot);
  }
  for (let j = 0; j < d; j++) gw[j]! += gwAcc[j]!;
  return gx;
}

/**
 * Causal depthwise conv1d over time, as PyTorch Conv1d(groups=d, padding=K−1) truncated to L:
 * out[b,t,i] = bias_i + Σ_w W[i,w] · in[b, t−K+1+w, i]. Input is a column slice [colOff, colOff+d) of rows with
 * `stride` columns (so the x half of in_proj's output is read in place). Output [B·L, d].
 */
export function causalConvForward(
  inp: Float32Array, stride: number, colOff: number, w: Float32Array, bias: Float32Array, B: number, L: number,
): Float32Array {
  const d = bias.length;
  const K = w.length / d;
  const out = new Float32Array(B * L * d);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < L; t++) {
      const o = (b * L + t) * d;
      for (let i = 0; i < d; i++) out[o + i] = bias[i]!;
      for (let wi = 0; wi < K; wi++) {
        const src = t - K + 1 + wi;
        if (src < 0) continue;
        const r = (b * L + src) * stride + colOff;
        for (let i = 0; i < d; i++) out[o + i]! += w[i * K + wi]! * inp[r + i]!;
      }
    }
  }
  return out;
}

/** Backward of `causalConvForward`: writes ∂in into gin's column slice, accumulates ∂W and ∂bias. */
export function causalConvBackward(
  inp: Float32Array, stride: number, colOff: number, w: Float32Array, gout: Float32Array, B: number, L: number,
  gin: Float32Array, gw: Float32Array, gbias: Float32Array,
): void {
  const d = gbias.length;
  const K = w.length / d;
  const gwAcc = new Float64Array(d * K);
  const gbAcc = new Float64Array(d);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < L; t++) {
      const o = (b * L + t) * d;
      for (let i = 0; i < d; i++) gbAcc[i] += gout[o + i]!;
      for (let wi = 0; wi < K; wi++) {
        const src = t - K + 1 + wi;
        if (src < 0) continue;
        const r = (b * L + src) * stride + colOff;
        for (let i = 0; i < d; i++) {
          gwAcc[i * K + wi] += gout[o + i]! * inp[r + i]!;
          gin[r + i]! += gout[o + i]! * w[i * K + wi]!;
        }
      }
    }
  }
  for (let i = 0; i < gw.length; i++) gw[i]! += gwAcc[i]!;
  for (let i = 0; i < d; i++) gbias[i]! += gbAcc[i]!;
}

/** Label that marks a position as not scored (PyTorch's ignore_index). */
export const IGNORE = -100;

/** −log softmax(logits[row])[target] for one row of `logits` [rows, vocab] (the benches' per-token evaluation loss). */
export function rowNll(logits: Float32Array, vocab: number, row: number, target: number): number {
  const o = row * vocab;
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) max = Math.max(max, logits[o + v]!);
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(logits[o + v]! - max);
  return Math.log(sum) + max - logits[o + target]!;
}

/**
 * Mean cross-entropy over positions whose target ≠ IGNORE (the SIMD kernel when V % 4 = 0, else the loop below). Overwrites `logits` [rows, V] with ∂loss/∂logits
 * (softmax − onehot)/count when `grad` is set. Returns the loss (nats), the scored count and per-row argmax hits.
 */
export function crossEntropy(
  logits: Float32Array, targets: Int32Array, vocab: number, grad: boolean,
): { loss: number; count: number; correct: number } {
  const rows = targets.length;
  if (logits.length !== rows * vocab) throw new Error(`crossEntropy: logits have ${logits.length} values, expected ${rows}×${vocab}`);
  let count = 0;
  for (let r = 0; r < rows; r++) {
    const tgt = targets[r]!;
    if (tgt === IGNORE) continue;
    if (!Number.isInteger(tgt) || tgt < 0 || tgt >= vocab) throw new Error(`crossEntropy: target ${tgt} at row ${r} outside [0, ${vocab})`);
    count++;
  }
  if (simdOpsAvailable(vocab)) return { ...crossEntropySimd(logits, targets, vocab, grad, count), count };
  let total = 0;
  let correct = 0;
  for (let r = 0; r < rows; r++) {
    const tgt = targets[r]!;
    const o = r * vocab;
    if (tgt === IGNORE) {
      if (grad) logits.fill(0, o, o + vocab);
      continue;
    }
    let max = -Infinity;
    let arg = 0;
    for (let v = 0; v < vocab; v++) if (logits[o + v]! > max) (max = logits[o + v]!), (arg = v);
    if (!Number.isFinite(max)) throw new Error(`crossEntropy: non-finite logits at row ${r}`);
    const lt = logits[o + tgt]!;
    let sum = 0;
    if (grad) {
      // one exp per logit: keep e^{l−max} in place, then scale to (softmax − onehot)/count
      for (let v = 0; v < vocab; v++) sum += logits[o + v] = Math.exp(logits[o + v]! - max);
      const inv = 1 / (sum * count);
      for (let v = 0; v < vocab; v++) logits[o + v]! *= inv;
      logits[o + tgt]! -= 1 / count;
    } else {
      for (let v = 0; v < vocab; v++) sum += Math.exp(logits[o + v]! - max);
    }
    total += Math.log(sum) + max - lt;
    if (arg === tgt) correct++;
  }
  return { loss: count ? total / count : 0, count, correct };
}
