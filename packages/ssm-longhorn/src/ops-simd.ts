/**
 * WebAssembly SIMD versions of the block's elementwise ops and of the cross-entropy (wasm/kernels.wat), with the
 * same contracts as the TypeScript versions in ops.ts / mixer.ts, which stay the references (tests compare both).
 * Each needs a row width that is a multiple of 4 and WebAssembly SIMD; callers check `simdOpsAvailable`.
 */
import { Arena, type KernelExports, simdKernels } from './wasm/instance.js';

export { simdEpoch, simdScratch } from './wasm/instance.js';

/** Whether the SIMD ops can run rows of `width` floats. */
export function simdOpsAvailable(width: number): boolean {
  return width % 4 === 0 && simdKernels() !== null;
}

function need(width: number): KernelExports {
  if (!simdOpsAvailable(width)) throw new Error(`simd ops: unavailable for rows of ${width} (needs a multiple of 4 and WebAssembly SIMD)`);
  return simdKernels()!;
}

/** PyTorch conv1d weight [d, 1, K] → [K, d] (so that four channels are one vector). */
function transposeConv(w: Float32Array, d: number, K: number): Float32Array {
  const t = new Float32Array(K * d);
  for (let i = 0; i < d; i++) for (let k = 0; k < K; k++) t[k * d + i] = w[i * K + k]!;
  return t;
}

/**
 * Causal depthwise conv + SiLU over the first d columns of `inp` rows of `stride` floats (the x half of in_proj's
 * output): xc = conv(x) (pre-activation), sig = σ(xc), xs = xc·σ(xc), each [B·L, d].
 */
export function convSiluForwardSimd(
  inp: Float32Array, stride: number, w: Float32Array, bias: Float32Array, B: number, L: number,
): { xc: Float32Array; sig: Float32Array; xs: Float32Array } {
  const d = bias.length;
  const K = w.length / d;
  const k = need(d);
  const rows = B * L;
  const a = new Arena(k);
  const [pin, pw, pb, pxc, psig, pxs] = [rows * stride, K * d, d, rows * d, rows * d, rows * d].map((f) => a.allocFloats(f));
  a.commit();
  a.f32(pin!, rows * stride).set(inp.subarray(0, rows * stride));
  a.f32(pw!, K * d).set(transposeConv(w, d, K));
  a.f32(pb!, d).set(bias);
  k.conv_silu_fwd(B, L, d, K, stride, pin!, pw!, pb!, pxc!, psig!, pxs!);
  return { xc: a.f32(pxc!, rows * d).slice(), sig: a.f32(psig!, rows * d).slice(), xs: a.f32(pxs!, rows * d).slice() };
}

/**
 * Backward of `convSiluForwardSimd` from gxs = ∂loss/∂xs: returns ∂x [B·L, d]; accumulates ∂W (PyTorch layout
 * [d, 1, K]) and ∂bias.
 */
export function convSiluBackwardSimd(
  inp: Float32Array, stride: number, w: Float32Array, gxs: Float32Array, xc: Float32Array, sig: Float32Array,
  B: number, L: number, gw: Float32Array, gbias: Float32Array,
): Float32Array {
  const d = gbias.length;
  const K = w.length / d;
  const k = need(d);
  const rows = B * L;
  const a = new Arena(k);
  const sizes = [rows * stride, K * d, rows * d, rows * d, rows * d, rows * d, K * d, d];
  const [pin, pw, pg, pxc, psig, pgin, pgw, pgb] = sizes.map((f) => a.allocFloats(f));
  a.commit();
  a.f32(pin!, rows * stride).set(inp.subarray(0, rows * stride));
  a.f32(pw!, K * d).set(transposeConv(w, d, K));
  a.f32(pg!, rows * d).set(gxs);
  a.f32(pxc!, rows * d).set(xc);
  a.f32(psig!, rows * d).set(sig);
  k.conv_silu_bwd(B, L, d, K, stride, pin!, pw!, pg!, pxc!, psig!, pgin!, pgw!, pgb!);
  const gwT = a.f32(pgw!, K * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < K; j++) gw[i * K + j]! += gwT[j * d + i]!;
  const gbv = a.f32(pgb!, d);
  for (let i = 0; i < d; i++) gbias[i]! += gbv[i]!;
  return a.f32(pgin!, rows * d).slice();
}

/**
 * Gate forward: y ← y + D ⊙ xs (in place), sigZ = σ(z), yg = y ⊙ SiLU(z), with z the columns [d, 2d) of `xz`
 * (rows of 2d floats).
 */
export function gateForwardSimd(
  y: Float32Array, xs: Float32Array, D: Float32Array, xz: Float32Array, rows: number,
): { sigZ: Float32Array; yg: Float32Array } {
  const d = D.length;
  const k = need(d);
  const a = new Arena(k);
  const [py, pxs, pD, pxz, ps, pyg] = [rows * d, rows * d, d, rows * 2 * d, rows * d, rows * d].map((f) => a.allocFloats(f));
  a.commit();
  a.f32(py!, rows * d).set(y);
  a.f32(pxs!, rows * d).set(xs);
  a.f32(pD!, d).set(D);
  a.f32(pxz!, rows * 2 * d).set(xz);
  k.gate_fwd(rows, d, 2 * d, py!, pxs!, pD!, pxz! + 4 * d, ps!, pyg!);
  y.set(a.f32(py!, rows * d));
  return { sigZ: a.f32(ps!, rows * d).slice(), yg: a.f32(pyg!, rows * d).slice() };
}

/** Gate backward from g = ∂loss/∂yg: gy = ∂loss/∂y, gz = ∂loss/∂z, each [rows, d]. */
export function gateBackwardSimd(
  g: Float32Array, xz: Float32Array, sigZ: Float32Array, y: Float32Array, rows: number, d: number,
): { gy: Float32Array; gz: Float32Array } {
  const k = need(d);
  const a = new Arena(k);
  const [pg, pxz, ps, py, pgy, pgz] = [rows * d, rows * 2 * d, rows * d, rows * d, rows * d, rows * d].map((f) => a.allocFloats(f));
  a.commit();
  a.f32(pg!, rows * d).set(g);
  a.f32(pxz!, rows * 2 * d).set(xz);
  a.f32(ps!, rows * d).set(sigZ);
  a.f32(py!, rows * d).set(y);
  k.gate_bwd(rows, d, 2 * d, pg!, pxz! + 4 * d, ps!, py!, pgy!, pgz!);
  return { gy: a.f32(pgy!, rows * d).slice(), gz: a.f32(pgz!, rows * d).slice() };
}

/**
 * Mean cross-entropy over rows whose target is ≥ 0 (negative = not scored), as ops.ts `crossEntropy`: with `grad`
 * the logits are overwritten by ∂loss/∂logits. Targets must already be validated.
 */
export function crossEntropySimd(
  logits: Float32Array, targets: Int32Array, vocab: number, grad: boolean, count: number,
): { loss: number; correct: number } {
  const k = need(vocab);
  const rows = targets.length;
  // Logits already in the module's memory (simdScratch) are processed in place; others are copied in and out.
  const inPlace = logits.buffer === k.memory.buffer;
  const a = new Arena(k, inPlace ? logits.byteOffset + logits.byteLength : 64);
  const pl = inPlace ? logits.byteOffset : a.allocFloats(rows * vocab);
  const [pt, ps] = [rows, 3 * rows].map((f) => a.allocFloats(f));
  a.commit();
  if (inPlace && logits.buffer !== k.memory.buffer) throw new Error('crossEntropy: logits view was detached (simdScratch headroom too small)');
  if (!inPlace) a.f32(pl, rows * vocab).set(logits);
  a.i32(pt!, rows).set(targets);
  k.cross_entropy(rows, vocab, pl, pt!, count ? 1 / count : 0, grad ? 1 : 0, ps!);
  if (grad && !inPlace) logits.set(a.f32(pl, rows * vocab));
  const stats = a.f32(ps!, 3 * rows);
  let total = 0;
  let correct = 0;
  for (let r = 0; r < rows; r++) {
    if (targets[r]! < 0) continue;
    const sum = stats[3 * r]!;
    const mlt = stats[3 * r + 1]!;
    if (!Number.isFinite(sum) || !Number.isFinite(mlt)) throw new Error(`crossEntropy: non-finite logits at row ${r}`);
    total += Math.log(sum) + mlt;
    correct += stats[3 * r + 2]!;
  }
  return { loss: count ? total / count : 0, correct };
}

/** [out, in] → [in, out] for a small weight matrix. */
function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c]!;
  return t;
}

/** The Δ projection z_β = δ Wᵀ + b for W [d, R] (dt_head / dt_proj, PyTorch layout), δ [rows, R]. */
export function dtForwardSimd(delta: Float32Array, w: Float32Array, bias: Float32Array, rows: number): Float32Array {
  const d = bias.length;
  const R = w.length / d;
  const k = need(d);
  const a = new Arena(k);
  const [pdl, pw, pb, pz] = [rows * R, R * d, d, rows * d].map((f) => a.allocFloats(f));
  a.commit();
  a.f32(pdl!, rows * R).set(delta);
  a.f32(pw!, R * d).set(transpose(w, d, R));
  a.f32(pb!, d).set(bias);
  k.dt_fwd(rows, R, d, R, pdl!, pw!, pb!, pz!);
  return a.f32(pz!, rows * d).slice();
}

/** Backward of `dtForwardSimd` from gz [rows, d]: returns ∂δ [rows, R]; accumulates ∂W ([d, R]) and ∂b. */
export function dtBackwardSimd(
  delta: Float32Array, w: Float32Array, gz: Float32Array, rows: number, gw: Float32Array, gbias: Float32Array,
): Float32Array {
  const d = gbias.length;
  const R = w.length / d;
  const k = need(d);
  const a = new Arena(k);
  const [pdl, pw, pg, pgd, pgw, pgb] = [rows * R, R * d, rows * d, rows * R, R * d, d].map((f) => a.allocFloats(f));
  a.commit();
  a.f32(pdl!, rows * R).set(delta);
  a.f32(pw!, R * d).set(transpose(w, d, R));
  a.f32(pg!, rows * d).set(gz);
  k.dt_bwd(rows, R, d, R, pdl!, pw!, pg!, pgd!, pgw!, pgb!);
  const gwT = a.f32(pgw!, R * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < R; j++) gw[i * R + j]! += gwT[j * d + i]!;
  const gb = a.f32(pgb!, d);
  for (let i = 0; i < d; i++) gbias[i]! += gb[i]!;
  return a.f32(pgd!, rows * R).slice();
}
