/**
 * Dead-latent resampling — Bricken et al. 2023, "Towards Monosemanticity" (appendix "Neuron Resampling"), the
 * recipe the ReLU SAE of that paper and the Gated SAE paper (Rajamanoharan et al. 2024a) trained with, as
 * dictionary_learning's StandardTrainer implements it (trainers/standard.py `resample_neurons`):
 *
 *   every `every` steps up to step `until`, the latents that have not fired for `every` steps are dead;
 *   draw that many rows of the current batch without replacement, with probability ∝ ‖x_r − x̂_r‖;
 *   for dead latent i and its row r, with u = (x_r − b_dec) / ‖x_r − b_dec‖:
 *     W_dec[i, :] = u · (1 for unit-norm decoders, else the mean norm of the alive rows)
 *     W_enc[:, i] = u · 0.2 · (mean norm of the alive encoder columns)
 *     the architecture's per-latent vectors (biases, gates, thresholds) ← `latentResets(cfg)`
 *   and Adam's first moments of everything reset are zeroed.
 *
 * Departures, each for our short runs:
 * - The references resample to the raw input x_r; we use x_r − b_dec, the input the encoder sees. On a
 *   mean-dominated stream (ours: ‖mean‖ is most of ‖x‖) every raw x_r points nearly along the mean, so raw inputs
 *   would give the resampled latents near-identical directions; centred ones spread over the data.
 * - dictionary_learning calls a latent dead after `every / 2` silent steps and zeroes Adam's second moments too.
 *   With `every` a tenth of a 1M-token run, half of it is 50k tokens: rare latents that are alive get resampled
 *   (on the default data that doubled the dead fraction at the end of training). So dead means silent for the
 *   whole interval (as AuxK's N_dead: a tenth of the run). And a zeroed second moment with Adam's bias correction
 *   at step t ≫ 1 makes the next step ≈ lr·(1 − β1)/√(1 − β2): 3× lr at β1 = 0.9, 32× at the β1 = 0 of the Gated
 *   recipe, which throws the new direction away at once; the reset second moment is the mean of the parameter's
 *   other entries instead, so the first steps have the usual size.
 */
import { z } from 'zod';
import type { Optimizer } from '../optim.js';
import { Rng } from '../rng.js';
import type { Params, Tensor } from '../tensor.js';

export const resampleOptionsSchema = z.object({
  /** Steps between resampling events (dictionary_learning `resample_steps`). */
  every: z.number().int().positive(),
  /** No resampling after this step (leave the last part of the run to settle). */
  until: z.number().int().nonnegative(),
  /** Seeds the row draws (each event draws from its own stream: seed and step). */
  seed: z.number().int().nonnegative().default(0),
  /** Norm of a resampled encoder column relative to the alive columns' mean (references: 0.2). */
  encoderScale: z.number().positive().default(0.2),
});
export type ResampleOptions = z.infer<typeof resampleOptionsSchema>;

/**
 * Resampling as fractions of a short run: an event every 10% of the steps up to 60%, so ≥ 40% of the run follows
 * the last one (Bricken et al. resample at fixed step counts of runs far longer than ours). The ReLU and Gated
 * recipes use it, and so does `resample: true` for an architecture whose recipe has none.
 */
export const SHORT_RUN_RESAMPLING = { everyFraction: 0.1, untilFraction: 0.6 } as const;

/** Whether `step` (after that many optimiser steps) is a resampling event. */
export const isResampleStep = (o: ResampleOptions, step: number): boolean => step > 0 && step <= o.until && step % o.every === 0;

/**
 * The dead latents at a resampling event: not fired during the last `every` steps (`lastFired[i]` is the step
 * count after the last step latent i fired in, 0 for never).
 */
export function deadForResampling(lastFired: Float64Array, step: number, o: ResampleOptions): number[] {
  const dead: number[] = [];
  for (let i = 0; i < lastFired.length; i++) if (step - lastFired[i]! >= o.every) dead.push(i);
  return dead;
}

/**
 * Resamples the `dead` latents from the rows of x (see the header). W_enc [d, m], W_dec [m, d] and b_dec [d] by
 * SAELens's names; `latentResets` names the other per-latent vectors [m] and the value a resampled latent gets.
 * Returns the number of latents resampled (at most the number of rows with a non-zero error).
 */
export function resampleLatents(
  params: Params,
  dead: number[],
  x: Tensor,
  xHat: Tensor,
  o: ResampleOptions & { step: number; unitNormDecoder: boolean; latentResets: Record<string, number>; optimizer?: Optimizer },
): number {
  const W_enc = params.W_enc;
  const W_dec = params.W_dec;
  const b_dec = params.b_dec;
  if (!W_enc || !W_dec || !b_dec) throw new Error('resampling needs W_enc, W_dec and b_dec');
  const [rows, d] = [x.shape[0]!, x.shape[1]!];
  const m = W_dec.shape[0]!;
  for (const name of Object.keys(o.latentResets)) {
    const p = params[name];
    if (!p || p.data.length !== m) throw new Error(`resampling: '${name}' is not a per-latent vector of length ${m}`);
  }
  if (dead.length === 0) return 0;

  // Row weights ∝ ‖x − x̂‖ (dictionary_learning), in float64.
  const weight = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0, o2 = r * d; j < d; j++, o2++) s += (x.data[o2]! - xHat.data[o2]!) ** 2;
    weight[r] = Math.sqrt(s);
  }
  const picks = weightedSampleWithoutReplacement(weight, dead.length, new Rng(((o.seed * 0x9e3779b1) ^ (o.step * 0x85ebca6b)) >>> 0));
  if (picks.length === 0) return 0;

  // Mean norms of the alive latents' encoder columns and decoder rows (1 when none is alive).
  const isDead = new Uint8Array(m);
  for (const i of dead) isDead[i] = 1;
  let encSum = 0;
  let decSum = 0;
  let alive = 0;
  for (let i = 0; i < m; i++) {
    if (isDead[i]) continue;
    let e = 0;
    let dn = 0;
    for (let j = 0; j < d; j++) (e += W_enc.data[j * m + i]! ** 2), (dn += W_dec.data[i * d + j]! ** 2);
    encSum += Math.sqrt(e);
    decSum += Math.sqrt(dn);
    alive++;
  }
  const encNorm = o.encoderScale * (alive > 0 ? encSum / alive : 1);
  const decNorm = o.unitNormDecoder || alive === 0 ? 1 : decSum / alive;

  const u = new Float64Array(d);
  const encIdx: number[] = [];
  const decIdx: number[] = [];
  for (let n = 0; n < picks.length; n++) {
    const i = dead[n]!;
    const r = picks[n]!;
    let norm = 0;
    for (let j = 0; j < d; j++) (u[j] = x.data[r * d + j]! - b_dec.data[j]!), (norm += u[j]! * u[j]!);
    norm = Math.sqrt(norm);
    if (!(norm > 0)) continue;
    for (let j = 0; j < d; j++) {
      W_dec.data[i * d + j] = (u[j]! / norm) * decNorm;
      W_enc.data[j * m + i] = (u[j]! / norm) * encNorm;
      decIdx.push(i * d + j);
      encIdx.push(j * m + i);
    }
    for (const [name, value] of Object.entries(o.latentResets)) params[name]!.data[i] = value;
  }
  if (o.optimizer) {
    const resampled = dead.slice(0, picks.length);
    o.optimizer.resetState('W_enc', encIdx, 'mean-of-rest');
    o.optimizer.resetState('W_dec', decIdx, 'mean-of-rest');
    for (const name of Object.keys(o.latentResets)) o.optimizer.resetState(name, resampled, 'mean-of-rest');
  }
  return picks.length;
}

/**
 * `n` distinct indices drawn with probability ∝ weight (zero weights never), in draw order: PyTorch's
 * `torch.multinomial(weights, n, replacement=False)` semantics. O(n · rows), fine for a batch.
 */
export function weightedSampleWithoutReplacement(weight: Float64Array, n: number, rng: Rng): number[] {
  const w = Float64Array.from(weight);
  let total = 0;
  for (const v of w) total += v;
  const out: number[] = [];
  while (out.length < n && total > 0) {
    let u = rng.uniform() * total;
    let pick = -1;
    for (let r = 0; r < w.length; r++) {
      if (w[r]! <= 0) continue;
      pick = r;
      u -= w[r]!;
      if (u < 0) break;
    }
    if (pick < 0) break;
    out.push(pick);
    total -= w[pick]!;
    w[pick] = 0;
    if (total < 1e-300) total = w.reduce((a, b) => a + b, 0);
  }
  return out;
}
