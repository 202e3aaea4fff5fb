/**
 * The hookable language-model contract. Every LM in saelab (llama2.c, ONNX, Longhorn) implements it, so the
 * harvester and the ΔLM-loss evaluator never know which model they talk to.
 *
 * Sites use TransformerLens-style names: `blocks.{layer}.hook_resid_pre`, `blocks.{layer}.hook_resid_post`,
 * `blocks.{layer}.hook_attn_out`, `blocks.{layer}.hook_mlp_out` (a model lists the ones it has in `sites()`).
 * An activation at a site is a [B·T, d] tensor, rows in (batch, position) order.
 */
import type { Tensor } from './tensor.js';

export interface LmInfo {
  name: string;
  vocabSize: number;
  dModel: number;
  nLayers: number;
  /** Longest context the model supports (Infinity for recurrent models). */
  maxSeqLen: number;
  /** Beginning-of-sequence token, or null if the model has none. Rows at BOS are excluded from harvests. */
  bos: number | null;
}

export interface LmRunOptions {
  /** Sites whose activations are returned in `acts`. */
  read?: readonly string[];
  /** Replace the activation at one site (e.g. by an SAE reconstruction); `fn` gets [B·T, d] and returns the same shape. */
  replace?: { site: string; fn: (act: Tensor) => Tensor | Promise<Tensor> };
  /** Skip the LM head (and stop after the last read site if the model can): for harvesting. */
  skipLogits?: boolean;
}

export interface LmRunResult {
  /** [B·T, vocab] logits, absent with skipLogits. */
  logits?: Tensor;
  acts: Record<string, Tensor>;
}

export interface HookableLM {
  readonly info: LmInfo;
  sites(): string[];
  siteDim(site: string): number;
  /** tokens: B·T token ids, row-major [B, T]. */
  run(tokens: Int32Array, batch: number, seqLen: number, opts?: LmRunOptions): Promise<LmRunResult>;
}

/**
 * Next-token cross-entropy (nats) from logits [B·T, V] for tokens [B, T]: position t predicts token t+1.
 * Returns per-prediction losses ([B·(T−1)], in (batch, position) order) and their mean.
 * Computed in float64 with the log-sum-exp trick.
 */
export function nextTokenCrossEntropy(
  logits: Tensor,
  tokens: Int32Array,
  batch: number,
  seqLen: number,
): { perToken: Float64Array; mean: number } {
  const vocab = logits.shape[1]!;
  if (logits.shape[0] !== batch * seqLen) {
    throw new Error(`nextTokenCrossEntropy: logits have ${logits.shape[0]} rows, expected batch·seqLen = ${batch * seqLen}`);
  }
  const perToken = new Float64Array(batch * (seqLen - 1));
  let total = 0;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seqLen - 1; t++) {
      const row = (b * seqLen + t) * vocab;
      const target = tokens[b * seqLen + t + 1]!;
      let max = -Infinity;
      for (let v = 0; v < vocab; v++) max = Math.max(max, logits.data[row + v]!);
      let sum = 0;
      for (let v = 0; v < vocab; v++) sum += Math.exp(logits.data[row + v]! - max);
      const ce = Math.log(sum) + max - logits.data[row + target]!;
      perToken[b * (seqLen - 1) + t] = ce;
      total += ce;
    }
  }
  return { perToken, mean: total / Math.max(1, perToken.length) };
}
