/**
 * Dead-latent tracking and the AuxK auxiliary loss — Gao et al. 2024, "Scaling and evaluating sparse autoencoders",
 * section 2.4 / appendix A.2 — for any architecture whose latents are chosen by a top-k style selection (TopK,
 * BatchTopK, Matryoshka BatchTopK).
 *
 * A latent is dead if it has not fired in the last N_dead training tokens. With e = x − x̂ (detached), take the
 * top-k_aux pre-activations among dead latents only, decode them without b_dec to ê, and add
 *   α · AuxK,   AuxK = ‖e − ê‖² scaled by min(n_dead / k_aux, 1)   (as SAELens does),   α = 1/32, k_aux = d_in / 2.
 * The pre-activations enter AuxK as they are (SAELens), so a dead latent that is negative on every row still gets
 * a gradient; `auxRelu: true` applies ReLU first, as openai/sparse_autoencoder does (an ablation).
 */
import { z } from 'zod';
import type { SparseRows } from '../fast/csr.js';
import { topKRows } from '../fast/selection.js';
import { workspaceOf } from '../fast/workspace.js';
import type { Params, Tensor } from '../tensor.js';
import type { RunInfo, SaeContext } from './contract.js';
import type { TrainStateCodec } from './define.js';
import { decodeAffine, decoderBackward } from './ops.js';

/** The AuxK settings, as config fields (spread them into an architecture's config schema). */
export const auxKConfigFields = {
  /** Latents used by the AuxK reconstruction; default d_in / 2. */
  kAux: z.number().int().positive().optional(),
  /** AuxK coefficient α. */
  auxCoefficient: z.number().nonnegative().default(1 / 32),
  /** A latent that has not fired for this many training tokens is dead (paper: 10M; scale with the data). */
  deadTokensThreshold: z.number().int().positive().default(10_000_000),
  /** ReLU the dead latents' pre-activations before AuxK (OpenAI's reference) instead of using them raw (SAELens). */
  auxRelu: z.boolean().default(false),
};
export interface AuxKConfig {
  dIn: number;
  dSae: number;
  kAux?: number;
  auxCoefficient: number;
  deadTokensThreshold: number;
  auxRelu: boolean;
}

/** cfg.json fields of the AuxK settings, and back. */
export const auxKSaelensFields = (cfg: AuxKConfig) => ({
  k_aux: cfg.kAux ?? null,
  aux_coefficient: cfg.auxCoefficient,
  dead_tokens_threshold: cfg.deadTokensThreshold,
  aux_relu: cfg.auxRelu,
});
export const auxKFieldsFromSaelens = (json: Record<string, unknown>) => ({
  kAux: json.k_aux,
  auxCoefficient: json.aux_coefficient,
  deadTokensThreshold: json.dead_tokens_threshold,
  auxRelu: json.aux_relu,
});

/** N_dead for a run: min(10M tokens, a tenth of the run), at least one batch — unless the user gave it. */
export const deadTokensFor = (run: Pick<RunInfo, 'batch' | 'totalTokens' | 'deadTokens'>): number =>
  run.deadTokens ?? Math.max(run.batch, Math.min(10_000_000, Math.floor(run.totalTokens / 10)));

/** Training state: tokens since each latent last fired. */
export interface DeadLatentState {
  tokensSinceFired: Float64Array;
}

/** The dead-latent counters as a training state; they are part of an exact resume (else AuxK is off for N_dead tokens). */
export const deadLatentState: TrainStateCodec<{ dSae: number }, DeadLatentState> = {
  init: (cfg) => ({ tokensSinceFired: new Float64Array(cfg.dSae) }),
  export: (state) => ({ tokensSinceFired: Array.from(state.tokensSinceFired) }),
  import: (cfg, json) => ({ tokensSinceFired: Float64Array.from(z.array(z.number().nonnegative()).length(cfg.dSae).parse(json.tokensSinceFired)) }),
};

/** Whether some latent can count as dead after a batch of `rows` (only then is AuxK computed, and `pre` needed). */
export function auxKPossible(state: DeadLatentState, cfg: AuxKConfig, rows: number): boolean {
  return cfg.auxCoefficient > 0 && state.tokensSinceFired.some((t) => t + rows >= cfg.deadTokensThreshold);
}

/** Counts this batch: latents in f fired (counter to 0), the others idled `rows` more tokens. Returns the dead ones. */
export function updateDeadLatents(state: DeadLatentState, f: SparseRows, cfg: AuxKConfig): number[] {
  const rows = f.rows;
  const since = state.tokensSinceFired;
  const fired = new Uint8Array(cfg.dSae);
  for (let e = 0; e < f.nnz; e++) fired[f.indices[e]!] = 1;
  const dead: number[] = [];
  for (let j = 0; j < cfg.dSae; j++) {
    since[j] = fired[j] ? 0 : since[j]! + rows;
    if (since[j]! >= cfg.deadTokensThreshold) dead.push(j);
  }
  return dead;
}

/**
 * Dead-latent bookkeeping (from this batch's latents f), then the AuxK term on the dead latents: its value
 * (α · scale · mean ‖e − ê‖²), its W_dec gradient, and its gradient w.r.t. the pre-activations (sparse, on the dead
 * latents picked). Null when no latent is dead. `pre` must be the dense pre-activations whenever `auxKPossible`
 * was true for this batch; x̂ is the reconstruction whose residual AuxK predicts.
 */
export async function deadLatentsAuxK(
  ctx: SaeContext,
  p: Params<'W_dec'>,
  x: Tensor,
  xHat: Tensor,
  pre: Tensor | null,
  f: SparseRows,
  state: DeadLatentState,
  cfg: AuxKConfig,
): Promise<{ auxk: number; dWDec: Tensor; dPre: SparseRows } | null> {
  const ws = workspaceOf(ctx);
  const rows = x.shape[0]!;
  const deadList = updateDeadLatents(state, f, cfg);
  const nDead = deadList.length;
  if (nDead === 0 || cfg.auxCoefficient === 0) return null;
  if (!pre) throw new Error('deadLatentsAuxK: latents are dead but the dense pre-activations were not computed');
  const kAux = cfg.kAux ?? Math.max(1, Math.floor(cfg.dIn / 2));
  const k = Math.min(kAux, nDead);
  const scale = Math.min(nDead / kAux, 1);
  // Top-k_aux pre-activations among the dead latents only (none of them fired in this batch).
  const fAux = topKRows(pre, k, { out: ws.sparseRows('fAux', rows, cfg.dSae), columns: Int32Array.from(deadList), positiveOnly: cfg.auxRelu });
  const eHat = await decodeAffine(ctx, fAux, p.W_dec, null, 'eHat'); // no b_dec: it predicts the residual e
  // AuxK = scale · mean_rows ‖e − ê‖² with e = x − x̂ detached; gradient w.r.t. ê is 2·scale·(ê − e)/B.
  const dEHat = ws.tensor('dEHat', eHat.shape);
  let s = 0;
  for (let i = 0; i < eHat.data.length; i++) {
    const diff = eHat.data[i]! - (x.data[i]! - xHat.data[i]!);
    s += diff * diff;
    dEHat.data[i] = (cfg.auxCoefficient * scale * 2 * diff) / rows;
  }
  const aux = await decoderBackward(ctx, fAux, dEHat, p.W_dec, { key: 'aux' });
  return { auxk: (cfg.auxCoefficient * scale * s) / rows, dWDec: aux.dWDec, dPre: aux.dF! };
}
