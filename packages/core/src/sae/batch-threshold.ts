/**
 * The inference threshold of batch-level top-k selection (BatchTopK, Bussmann, Leask & Nanda 2024, section 3; and
 * Matryoshka BatchTopK). A selection over the whole batch cannot run on one row at inference, so inference uses one
 * global threshold θ, the running average of the smallest activation kept in each training batch:
 *   θ ← (1 − r)·θ + r·min_kept,  the first batch sets θ,   r = SAELens `topk_threshold_lr` (0.01),
 * and the SAE is served as a JumpReLU with θ for every latent: f = pre ⊙ H(pre − θ). θ is a buffer, not a
 * parameter (zero gradient); it is mirrored into the `threshold` tensor after every step, so saved folders are
 * JumpReLU folders, as SAELens and dictionary_learning save BatchTopK for inference.
 */
import { z } from 'zod';
import type { SparseRows } from '../fast/csr.js';
import { globalTopK } from '../fast/selection.js';
import { workspaceOf } from '../fast/workspace.js';
import type { Rng } from '../rng.js';
import { type Params, type Tensor, zeros } from '../tensor.js';
import { type DeadLatentState, deadLatentState, deadTokensFor } from './auxk.js';
import { type BaseSaeConfig, type RunInfo, type SaeContext, kSparsity } from './contract.js';
import { type DictionaryParams, encodeAboveThreshold, initTiedDictionary } from './ops.js';

/** The running-average rate as a config field (spread into an architecture's config schema). */
export const batchThresholdConfigFields = {
  /** Rate of the running average that gives the inference threshold θ (SAELens `topk_threshold_lr`). */
  thresholdRate: z.number().gt(0).max(1).default(0.01),
};

/** θ so far and how many batches went into it. */
export interface BatchThresholdState {
  /** θ so far (mirrored into the `threshold` tensor after every step). */
  threshold: number;
  /** Batches averaged into θ (0: the next batch sets θ outright). */
  thresholdUpdates: number;
}

export const batchThresholdState = {
  init: (): BatchThresholdState => ({ threshold: 0, thresholdUpdates: 0 }),
  export: (s: BatchThresholdState) => ({ threshold: s.threshold, thresholdUpdates: s.thresholdUpdates }),
  import: (json: Record<string, unknown>): BatchThresholdState => ({
    threshold: z.number().finite().parse(json.threshold),
    thresholdUpdates: z.number().int().nonnegative().parse(json.thresholdUpdates),
  }),
};

/**
 * The k·B largest positive pre-activations of the whole batch (all positive ones if fewer), as CSR rows in the
 * workspace: f = BatchTopK_{k·B}(ReLU(pre)).
 */
export function batchTopKSelect(ctx: SaeContext, pre: Tensor, k: number): SparseRows {
  const ws = workspaceOf(ctx);
  const [rows, m] = pre.shape as [number, number];
  return globalTopK(pre, k * rows, { out: ws.sparseRows('f', rows, m), scratch: ws.buffer('batchTopKScratch', pre.data.length) });
}

/**
 * θ ← (1 − r)·θ + r·(smallest kept activation); the first batch sets θ. A batch with no active latent leaves θ.
 * Then mirrors θ into the `threshold` tensor.
 */
export function updateBatchThreshold(state: BatchThresholdState, f: SparseRows, rate: number, threshold: Tensor): void {
  if (f.nnz > 0) {
    let minKept = Infinity;
    for (let e = 0; e < f.nnz; e++) minKept = Math.min(minKept, f.values[e]!);
    state.threshold = state.thresholdUpdates === 0 ? minKept : (1 - rate) * state.threshold + rate * minKept;
    state.thresholdUpdates++;
  }
  threshold.data.fill(state.threshold);
}

/**
 * Inference with the threshold: the JumpReLU f = pre ⊙ H(pre − θ), θ clamped at 0 (θ < 0 would let negative
 * pre-activations through; SAELens's JumpReLU gates with relu(threshold) too).
 */
export async function encodeWithBatchThreshold(
  p: Params<'W_enc' | 'b_enc' | 'b_dec' | 'threshold'>,
  x: Tensor,
  cfg: { applyBDecToInput: boolean },
  ctx: SaeContext,
): Promise<Tensor> {
  return encodeAboveThreshold(p, x, cfg, ctx, p.threshold.data.map((t) => Math.max(t, 0)));
}

/** cfg.json fields of a JumpReLU folder that serves a batch-threshold SAE, plus the settings it was trained with. */
export const batchThresholdSaelensFields = (trainedAs: string, cfg: { thresholdRate: number }) => ({
  jumprelu_bandwidth: 0.001,
  jumprelu_init_threshold: 0.001,
  saelab_training_architecture: trainedAs,
  topk_threshold_lr: cfg.thresholdRate,
});

/** k from the run's sparsity value and N_dead from its length: the config fields of every k-based architecture with AuxK. */
export const kRunConfig = ({ sparsity, ...run }: RunInfo) => ({ k: sparsity, deadTokensThreshold: deadTokensFor(run) });

/** The training state of a batch-threshold architecture: AuxK's dead-latent counters and θ's running average. */
export type BatchTopKState = DeadLatentState & BatchThresholdState;

/**
 * What every batch-level top-k architecture shares, to spread into `defineSae({ ... })`: k as its sparsity value
 * (with AuxK's dead-latent window from the run), the dictionary plus the `threshold` buffer (zero at init),
 * inference through the global threshold, served (saved and loaded) as a JumpReLU, unit-norm decoder rows, and
 * the dead-latent counters and θ as training state. The architecture adds its config, loss and cfg.json fields.
 */
export const batchTopKFamily = {
  saelensArchitecture: 'jumprelu',
  servedAs: 'jumprelu',
  sparsity: kSparsity,
  runConfig: kRunConfig,
  runOptions: ['deadTokens'] as const,
  decoderConstraint: 'unit-norm' as const,
  paramShapes: ({ dIn, dSae }: BaseSaeConfig) => ({ W_enc: [dIn, dSae], W_dec: [dSae, dIn], b_enc: [dSae], b_dec: [dIn], threshold: [dSae] }),
  init: (cfg: BaseSaeConfig, rng: Rng): Params<DictionaryParams | 'threshold'> => ({ ...initTiedDictionary(cfg.dIn, cfg.dSae, rng), threshold: zeros([cfg.dSae]) }),
  encode: encodeWithBatchThreshold,
  trainState: {
    init: (cfg: { dSae: number }): BatchTopKState => ({ ...deadLatentState.init(cfg), ...batchThresholdState.init() }),
    export: (state: BatchTopKState) => ({ ...deadLatentState.export(state), ...batchThresholdState.export(state) }),
    import: (cfg: { dSae: number }, json: Record<string, unknown>): BatchTopKState => ({ ...deadLatentState.import(cfg, json), ...batchThresholdState.import(json) }),
  },
};
