/**
 * Metrics as the field defines them, beside ours (metrics.ts), so our numbers can be read against SAEBench and
 * SAELens. Every function here is float64 and has a stated source:
 *
 * - SAEBench's explained variance (sae_bench/evals/core/main.py, get_sparsity_and_variance_metrics): per TOKEN,
 *   1 − ‖x − x̂‖² / ‖x − mean_batch(x)‖², where the mean is over the (non-special) tokens of the same evaluation
 *   batch, then the mean of that ratio over all tokens. It differs from our FVU (a ratio of sums over the whole
 *   eval set): tokens near the batch mean have tiny denominators and weigh as much as any other, so it is
 *   noisier and usually lower than 1 − FVU.
 * - KL divergence (same file, get_recons_loss → kl): per position Σ_v p_clean(v) (log p_clean(v) − log p_new(v)),
 *   averaged over the non-special positions; the KL-divergence score is (KL_ablation − KL_sae) / KL_ablation with
 *   the site zero-ablated at every position for KL_ablation.
 * - Latent density (SAEBench's feature_density / SAELens's log-feature-density histogram): per latent, the
 *   fraction of evaluation tokens on which it is non-zero, shown as a histogram of log10 of that fraction.
 */
import { type Tensor, assertShape, dims2 } from '../tensor.js';

/** Streaming SAEBench explained variance: call `addBatch` once per evaluation batch (the mean is per batch). */
export class SaeBenchExplainedVariance {
  private sum = 0;
  private tokens = 0;
  /** Tokens skipped because they equal their batch mean exactly (the ratio is undefined there). */
  skipped = 0;

  /** x, x̂: [rows, d] of ONE evaluation batch, special tokens already removed. */
  addBatch(x: Tensor, xHat: Tensor): void {
    const [rows, d] = dims2(x, 'SAEBench explained variance: x');
    assertShape(xHat, [rows, d], 'SAEBench explained variance: xHat');
    if (rows === 0) return;
    const mean = new Float64Array(d);
    for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) mean[j] += x.data[r * d + j]!;
    for (let j = 0; j < d; j++) mean[j] /= rows;
    for (let r = 0; r < rows; r++) {
      let rss = 0;
      let tss = 0;
      for (let j = 0; j < d; j++) {
        const xi = x.data[r * d + j]!;
        const e = xi - xHat.data[r * d + j]!;
        const c = xi - mean[j]!;
        rss += e * e;
        tss += c * c;
      }
      if (!Number.isFinite(rss) || !Number.isFinite(tss)) throw new Error('SAEBench explained variance: non-finite activations or reconstruction');
      if (tss === 0) {
        this.skipped++;
        continue;
      }
      this.sum += 1 - rss / tss;
      this.tokens++;
    }
  }

  /** Mean over tokens of the per-token explained variance; null when no token had a non-zero denominator. */
  value(): number | null {
    return this.tokens === 0 ? null : this.sum / this.tokens;
  }

  get count(): number {
    return this.tokens;
  }
}

/** log-softmax of one row of logits, in float64. */
function logSoftmaxRow(logits: Float32Array, offset: number, vocab: number, out: Float64Array): void {
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) max = Math.max(max, logits[offset + v]!);
  let s = 0;
  for (let v = 0; v < vocab; v++) s += Math.exp(logits[offset + v]! - max);
  const lse = Math.log(s) + max;
  for (let v = 0; v < vocab; v++) out[v] = logits[offset + v]! - lse;
}

/**
 * Per-row KL(p_clean ‖ p_new) in nats from two [rows, vocab] logit tensors (rows = every position of the run).
 * Non-negative up to rounding; exactly 0 when the logits are equal.
 */
export function klDivergenceRows(cleanLogits: Tensor, newLogits: Tensor): Float64Array {
  const [rows, vocab] = dims2(cleanLogits, 'KL: clean logits');
  assertShape(newLogits, [rows, vocab], 'KL: new logits');
  const lp = new Float64Array(vocab);
  const lq = new Float64Array(vocab);
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    logSoftmaxRow(cleanLogits.data, r * vocab, vocab, lp);
    logSoftmaxRow(newLogits.data, r * vocab, vocab, lq);
    let kl = 0;
    for (let v = 0; v < vocab; v++) {
      const p = Math.exp(lp[v]!);
      if (p > 0) kl += p * (lp[v]! - lq[v]!);
    }
    if (!Number.isFinite(kl)) throw new Error(`KL: non-finite divergence at row ${r}`);
    out[r] = Math.max(0, kl);
  }
  return out;
}

/** KL-divergence score (SAEBench): (KL_ablation − KL_sae) / KL_ablation; null when zero-ablation changes nothing. */
export function klDivScore(klSae: number, klAblation: number): number | null {
  if (!Number.isFinite(klSae) || !Number.isFinite(klAblation)) throw new Error(`klDivScore: KL values must be finite, got ${klSae}, ${klAblation}`);
  return klAblation === 0 ? null : (klAblation - klSae) / klAblation;
}

export interface DensityHistogram {
  /** Latents that never fired on the evaluation rows (log10 frequency = −∞). */
  dead: number;
  /** Bin edges in log10(firing frequency), ascending; bin i is [edges[i], edges[i+1]) (the last bin includes 0). */
  edges: number[];
  counts: number[];
  rows: number;
  latents: number;
}

/**
 * Histogram of log10(firing frequency) of the latents, frequency = firingCounts[i] / rows. Bins of `binWidth`
 * from `lowest` (default: the bin holding 1/rows, the rarest possible non-zero frequency) to 0.
 */
export function latentDensityHistogram(firingCounts: ArrayLike<number>, rows: number, binWidth = 0.25, lowest?: number): DensityHistogram {
  if (!Number.isInteger(rows) || rows <= 0) throw new Error(`latentDensityHistogram: rows must be a positive integer, got ${rows}`);
  if (!(binWidth > 0)) throw new Error(`latentDensityHistogram: binWidth must be positive, got ${binWidth}`);
  const lo = lowest ?? Math.floor(Math.log10(1 / rows) / binWidth) * binWidth;
  const nBins = Math.max(1, Math.round(-lo / binWidth));
  const edges = Array.from({ length: nBins + 1 }, (_, i) => lo + i * binWidth);
  const counts = new Array<number>(nBins).fill(0);
  let dead = 0;
  for (let i = 0; i < firingCounts.length; i++) {
    const c = firingCounts[i]!;
    if (c < 0 || c > rows || !Number.isFinite(c)) throw new Error(`latentDensityHistogram: latent ${i} fired ${c} times on ${rows} rows`);
    if (c === 0) {
      dead++;
      continue;
    }
    const lf = Math.log10(c / rows);
    const b = Math.min(nBins - 1, Math.max(0, Math.floor((lf - lo) / binWidth + 1e-9)));
    counts[b]!++;
  }
  return { dead, edges, counts, rows, latents: firingCounts.length };
}
