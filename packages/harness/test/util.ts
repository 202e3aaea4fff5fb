/**
 * Shared helpers for the harness tests: temp folders, running the CLI (in-process through `main()`, or the real
 * binary), small synthetic activation files, and float64 reference forwards written from SAELens's formulas.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Tensor, syntheticSparseData, writeNpyFile } from '@saelab/core';
import { main } from '../src/cli.js';

export const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/saelab.js');

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `saelab-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `saelab ARGS` in this process through main(), capturing stdout/stderr and the exit code. */
export async function cli(...args: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const origOut = process.stdout.write.bind(process.stdout);
  const origErr = process.stderr.write.bind(process.stderr);
  const saved = process.exitCode;
  process.exitCode = 0;
  process.stdout.write = ((s: string | Uint8Array) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => (err.push(String(s)), true)) as typeof process.stderr.write;
  try {
    await main(['node', 'saelab', ...args]);
  } finally {
    process.stdout.write = origOut;
    process.stderr.write = origErr;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = saved;
  return { code, stdout: out.join(''), stderr: err.join('') };
}

/** Runs the real binary (`node bin/saelab.js ARGS`). */
export function bin(...args: string[]): Promise<CliResult> {
  return new Promise((res) => {
    execFile(process.execPath, [BIN, ...args], { maxBuffer: 1 << 24 }, (e, stdout, stderr) => {
      const code = e ? (typeof e.code === 'number' ? e.code : 1) : 0;
      res({ code, stdout, stderr });
    });
  });
}

/** Sparse synthetic activations (scaled so normalisation matters) written as float32 .npy. */
export async function writeSynthetic(path: string, o: { rows: number; dIn: number; features?: number; scale?: number; seed?: number }): Promise<Tensor> {
  const { x } = syntheticSparseData({ rows: o.rows, dIn: o.dIn, features: o.features ?? 2 * o.dIn, meanActive: 3, seed: o.seed ?? 1 });
  const s = o.scale ?? 1;
  for (let i = 0; i < x.data.length; i++) x.data[i] = x.data[i]! * s + 0.05 * s * Math.sin(i);
  await writeNpyFile(path, x);
  return x;
}

// ---------------------------------------------------------------------------------------------------------------
// float64 references (SAELens 6.x sae_lens/saes/*.py, row-vector convention: W_enc [d_in, d_sae], W_dec [d_sae, d_in])

export type P64 = Record<string, Float64Array>;

export function toP64(p: Record<string, Tensor>): P64 {
  return Object.fromEntries(Object.entries(p).map(([k, t]) => [k, Float64Array.from(t.data)]));
}

/** x − b_dec·apply_b_dec_to_input (SAELens `process_sae_in`), then (·) W + b for each row. */
export function affine64(x: ArrayLike<number>, rows: number, dIn: number, dSae: number, W: ArrayLike<number>, b: ArrayLike<number>, bDec: ArrayLike<number> | null): Float64Array {
  const out = new Float64Array(rows * dSae);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < dSae; i++) {
      let s = b[i]!;
      for (let j = 0; j < dIn; j++) s += (x[r * dIn + j]! - (bDec ? bDec[j]! : 0)) * W[j * dSae + i]!;
      out[r * dSae + i] = s;
    }
  }
  return out;
}

/** x̂ = f W_dec + b_dec. */
export function decode64(f: ArrayLike<number>, rows: number, dIn: number, dSae: number, Wdec: ArrayLike<number>, bDec: ArrayLike<number>): Float64Array {
  const out = new Float64Array(rows * dIn);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < dIn; j++) {
      let s = bDec[j]!;
      for (let i = 0; i < dSae; i++) s += f[r * dSae + i]! * Wdec[i * dIn + j]!;
      out[r * dIn + j] = s;
    }
  }
  return out;
}

/** Row norms ‖W_dec,i‖. */
export function decoderNorms(Wdec: ArrayLike<number>, dIn: number, dSae: number): Float64Array {
  const n = new Float64Array(dSae);
  for (let i = 0; i < dSae; i++) {
    let s = 0;
    for (let j = 0; j < dIn; j++) s += Wdec[i * dIn + j]! ** 2;
    n[i] = Math.sqrt(s);
  }
  return n;
}

/**
 * Latents f and a per-entry "decision margin" (how far the entry is from flipping between zero and non-zero);
 * float32 vs float64 may legitimately disagree where the margin is tiny, so comparisons skip those entries.
 */
export interface Encoded64 {
  f: Float64Array;
  margin: Float64Array;
}

export function encode64(
  arch: 'standard' | 'gated' | 'topk' | 'jumprelu',
  p: P64,
  x: ArrayLike<number>,
  rows: number,
  dIn: number,
  dSae: number,
  o: { applyBDec?: boolean; k?: number; rescaleByDecoderNorm?: boolean } = {},
): Encoded64 {
  const bDec = o.applyBDec === false ? null : p.b_dec!;
  const f = new Float64Array(rows * dSae);
  const margin = new Float64Array(rows * dSae).fill(Infinity);
  if (arch === 'standard') {
    const pre = affine64(x, rows, dIn, dSae, p.W_enc!, p.b_enc!, bDec);
    pre.forEach((v, i) => (f[i] = Math.max(v, 0))); // continuous: no margin needed
  } else if (arch === 'gated') {
    // SAELens GatedSAE.encode: (pi_gate > 0) * relu(sae_in @ (W_enc * exp(r_mag)) + b_mag)
    const gate = affine64(x, rows, dIn, dSae, p.W_enc!, p.b_gate!, bDec);
    const Wmag = p.W_enc!.map((w, idx) => w * Math.exp(p.r_mag![idx % dSae]!));
    const mag = affine64(x, rows, dIn, dSae, Wmag, p.b_mag!, bDec);
    for (let i = 0; i < f.length; i++) {
      f[i] = gate[i]! > 0 ? Math.max(mag[i]!, 0) : 0;
      margin[i] = Math.abs(gate[i]!); // the ReLU on the magnitude is continuous
    }
  } else if (arch === 'jumprelu') {
    // SAELens JumpReLUSAE.encode: relu(pre) * (pre > relu(threshold))
    const pre = affine64(x, rows, dIn, dSae, p.W_enc!, p.b_enc!, bDec);
    for (let i = 0; i < f.length; i++) {
      const v = pre[i]!;
      const th = Math.max(p.threshold![i % dSae]!, 0);
      f[i] = Math.max(v, 0) * (v > th ? 1 : 0);
      margin[i] = Math.abs(v - th);
    }
  } else {
    // SAELens TopKSAE.encode: hidden_pre (× ‖W_dec,i‖ if rescale_acts_by_decoder_norm), top k per row, ReLU.
    const k = o.k!;
    const pre = affine64(x, rows, dIn, dSae, p.W_enc!, p.b_enc!, bDec);
    if (o.rescaleByDecoderNorm) {
      const n = decoderNorms(p.W_dec!, dIn, dSae);
      for (let i = 0; i < pre.length; i++) pre[i] = pre[i]! * n[i % dSae]!;
    }
    for (let r = 0; r < rows; r++) {
      const row = pre.subarray(r * dSae, (r + 1) * dSae);
      const order = [...row.keys()].sort((a, b) => row[b]! - row[a]!);
      const kth = row[order[k - 1]!]!;
      const next = k < dSae ? row[order[k]!]! : -Infinity;
      for (let t = 0; t < dSae; t++) {
        const i = order[t]!;
        const v = row[i]!;
        f[r * dSae + i] = t < k ? Math.max(v, 0) : 0;
        // an entry can flip only at the k / k+1 boundary (the ReLU inside the top k is continuous)
        if (t === k - 1 || t === k) margin[r * dSae + i] = kth - next;
      }
    }
  }
  return { f, margin };
}

/** max |a − b| / scale over entries whose margin ≥ minMargin; also returns how many entries were skipped. */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>, o: { margin?: Float64Array; minMargin?: number } = {}): { err: number; skipped: number } {
  let scale = 1e-12;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  let err = 0;
  let skipped = 0;
  for (let i = 0; i < b.length; i++) {
    if (o.margin && o.margin[i]! < (o.minMargin ?? 0)) {
      skipped++;
      continue;
    }
    err = Math.max(err, Math.abs(a[i]! - b[i]!) / scale);
  }
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  return { err, skipped };
}

/** MSE (mean over rows of Σ_d (x − x̂)²), FVU and mean L0 in float64 from raw arrays. */
export function metrics64(x: ArrayLike<number>, xHat: ArrayLike<number>, f: ArrayLike<number>, rows: number, dIn: number, dSae: number) {
  let sse = 0;
  const mean = new Float64Array(dIn);
  for (let r = 0; r < rows; r++) for (let j = 0; j < dIn; j++) mean[j] += x[r * dIn + j]! / rows;
  let tv = 0;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < dIn; j++) {
      const v = x[r * dIn + j]!;
      sse += (v - xHat[r * dIn + j]!) ** 2;
      tv += (v - mean[j]!) ** 2;
    }
  }
  let nz = 0;
  for (let i = 0; i < rows * dSae; i++) if (f[i] !== 0) nz++;
  return { mse: sse / rows, fvu: sse / tv, l0: nz / rows };
}

/** Path of a headless-capable Chromium on PATH, or null (the browser tests then skip with a message). */
export function findChromium(): string | null {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']) {
    try {
      return execFileSync('which', [name], { encoding: 'utf8' }).trim() || null;
    } catch {
      /* not installed */
    }
  }
  return null;
}
