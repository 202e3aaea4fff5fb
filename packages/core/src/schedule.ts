/**
 * Learning-rate schedules, coefficient warm-up (for the sparsity penalty λ) and global gradient-norm clipping.
 * Steps are 0-based: step 0 is the first optimiser step.
 */
import { z } from 'zod';
import type { Params } from './tensor.js';

export const LrSchedule = z
  .object({
    kind: z.enum(['constant', 'cosine', 'linear-decay']),
    /** Linear warm-up from lr/warmupSteps (step 0) to lr (step warmupSteps−1); 0 = none. */
    warmupSteps: z.number().int().min(0).default(0),
    /** Length of training; needed by cosine and linear-decay. */
    totalSteps: z.number().int().positive().optional(),
    /** linear-decay: decay linearly to 0 over this final fraction of totalSteps (SAE ReLU "April update": 0.2). */
    decayFraction: z.number().gt(0).max(1).default(0.2),
    /** cosine: the lr never goes below minLrFraction·lr. */
    minLrFraction: z.number().min(0).max(1).default(0),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.kind !== 'constant' && s.totalSteps === undefined) {
      ctx.addIssue({ code: 'custom', path: ['totalSteps'], message: `totalSteps is required for the '${s.kind}' schedule` });
    }
    if (s.totalSteps !== undefined && s.warmupSteps > s.totalSteps) {
      ctx.addIssue({ code: 'custom', path: ['warmupSteps'], message: `warmupSteps (${s.warmupSteps}) exceeds totalSteps (${s.totalSteps})` });
    }
  });
export type LrSchedule = z.output<typeof LrSchedule>;
export type LrScheduleInput = z.input<typeof LrSchedule>;

/** Parses a schedule, throwing an error that names the bad field. */
export function parseLrSchedule(s: unknown): LrSchedule {
  const r = LrSchedule.safeParse(s);
  if (!r.success) throw new Error(`invalid lr schedule: ${z.prettifyError(r.error)}`);
  return r.data;
}

function checkStep(step: number, fn: string): void {
  if (!Number.isInteger(step) || step < 0) throw new Error(`${fn}: step must be a non-negative integer, got ${step}`);
}

/**
 * Learning rate for 0-based `step`: warm-up factor × decay factor × baseLr.
 * - warm-up: (step+1)/warmupSteps while step < warmupSteps (step 0 already moves the weights)
 * - cosine: minLrFraction + (1−minLrFraction)·½(1 + cos(π·p)), p = (step−warmup)/(total−warmup) clamped to [0, 1]
 * - linear-decay: min(1, (total−step)/(decayFraction·total)), clamped at 0 — flat, then linear to 0 at `total`
 * Steps past totalSteps keep the final value.
 */
export function lrAt(step: number, baseLr: number, schedule: LrScheduleInput): number {
  checkStep(step, 'lrAt');
  if (!Number.isFinite(baseLr) || baseLr < 0) throw new Error(`lrAt: baseLr must be finite and >= 0, got ${baseLr}`);
  const s = parseLrSchedule(schedule);
  const warm = s.warmupSteps > 0 && step < s.warmupSteps ? (step + 1) / s.warmupSteps : 1;
  let decay = 1;
  if (s.kind === 'cosine') {
    const span = s.totalSteps! - s.warmupSteps;
    const p = span > 0 ? Math.min(1, Math.max(0, (step - s.warmupSteps) / span)) : 1;
    decay = s.minLrFraction + (1 - s.minLrFraction) * 0.5 * (1 + Math.cos(Math.PI * p));
  } else if (s.kind === 'linear-decay') {
    const decaySteps = s.decayFraction * s.totalSteps!;
    decay = Math.min(1, Math.max(0, (s.totalSteps! - step) / decaySteps));
  }
  return baseLr * warm * decay;
}

/**
 * Coefficient warm-up for a loss weight such as λ: finalValue·min(1, step/warmupSteps) — exactly 0 at step 0,
 * reaching finalValue at step warmupSteps (Gemma Scope / JumpReLU λ warm-up). warmupSteps 0 = always finalValue.
 */
export function warmupCoefficient(step: number, warmupSteps: number, finalValue: number): number {
  checkStep(step, 'warmupCoefficient');
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new Error(`warmupCoefficient: warmupSteps must be a non-negative integer, got ${warmupSteps}`);
  }
  if (!Number.isFinite(finalValue)) throw new Error(`warmupCoefficient: finalValue must be finite, got ${finalValue}`);
  if (warmupSteps === 0) return finalValue;
  return finalValue * Math.min(1, step / warmupSteps);
}

/**
 * Global L2 gradient-norm clipping (PyTorch `clip_grad_norm_`): norm = √(Σ over all tensors Σ g²) in float64;
 * if maxNorm > 0 and norm > maxNorm, every gradient is scaled in place by maxNorm / (norm + 1e-6).
 * Returns the pre-clip norm. maxNorm 0 turns clipping off (the norm is still returned, e.g. for logging).
 * A non-finite norm throws, naming the offending tensor, rather than spreading NaN into the weights.
 */
export function clipGradNorm(grads: Params, maxNorm: number): number {
  if (!Number.isFinite(maxNorm) || maxNorm < 0) throw new Error(`clipGradNorm: maxNorm must be finite and >= 0, got ${maxNorm}`);
  let sumSq = 0;
  for (const name in grads) {
    const d = grads[name]!.data;
    let s = 0;
    for (let i = 0; i < d.length; i++) s += d[i]! * d[i]!;
    if (!Number.isFinite(s)) throw new Error(`clipGradNorm: gradient '${name}' contains non-finite values`);
    sumSq += s;
  }
  const norm = Math.sqrt(sumSq);
  if (!Number.isFinite(norm)) throw new Error(`clipGradNorm: gradient norm overflowed (${norm})`);
  if (maxNorm > 0 && norm > maxNorm) {
    const coef = maxNorm / (norm + 1e-6);
    for (const name in grads) {
      const d = grads[name]!.data;
      for (let i = 0; i < d.length; i++) d[i] = d[i]! * coef;
    }
  }
  return norm;
}
