/**
 * Learning curves of a sweep's training runs, and the convergence check the report applies to them.
 *
 * A curve is trainRun's `curves` (one record per ~0.2% of the steps: the means over those steps), written as JSONL
 * to the point's cache folder (`curves.jsonl`) when the point finishes. trainRun carries the records in its
 * checkpoints, which the sweep keeps in the point's folder while a run is under way, so an interrupted point that
 * resumes ends with the whole curve, the same as an uninterrupted run's.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '@saelab/core';
import type { CurvePoint } from '../train-run.js';

/** One record of a curve: trainRun's `CurvePoint` (means over the steps since the previous record). */
export type CurveRecord = CurvePoint;

export function readCurve(path: string): CurveRecord[] {
  if (!existsSync(path)) return [];
  const out: CurveRecord[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as CurveRecord);
    } catch {
      break; // a line cut by an interruption: everything before it is intact
    }
  }
  return out;
}

/** Writes a curve as JSONL, atomically. */
export async function writeCurve(path: string, curve: CurveRecord[]): Promise<void> {
  await writeFileAtomic(path, curve.map((r) => JSON.stringify(r) + '\n').join(''));
}

export interface Convergence {
  /** Mean training objective over the window ending at 80% of the steps, and over the last window (each `window` of the run). */
  lossAt80: number;
  lossAtEnd: number;
  /** (lossAt80 − lossAtEnd) / lossAt80: how much the objective still fell over the last 20% of the steps. */
  relativeDrop: number;
  /**
   * The same over the 20% of steps before the lr decay (windows ending at 60% and at 80%): how much the objective
   * was still falling at the full lr. Null when the curve has no records there.
   */
  constantLrDrop: number | null;
  /** relativeDrop ≤ threshold. */
  converged: boolean;
  threshold: number;
}

/** Loss terms that serve dead latents, not the fit: their size follows how many latents are dead. */
const AUXILIARY_PARTS = ['auxk', 'preAct'];

/** The training objective of a record: its loss without the auxiliary dead-latent terms (AuxK, pre-activation loss). */
export const objectiveOf = (r: CurveRecord): number => r.loss - AUXILIARY_PARTS.reduce((a, k) => a + (r.parts[k] ?? 0), 0);

/**
 * The report's convergence check: the training objective (the loss without AuxK and the pre-activation loss, which
 * shrink as dead latents revive whether or not the fit improves), averaged over 5% of the run, at 80% of the steps
 * and at the end; a point whose objective still fell by more than `threshold` (2%) over its last 20% is flagged.
 * Part of that fall is the lr decay of the schedule (linear to 0 over the last 20%: annealing lowers the loss by
 * design), so `constantLrDrop` gives the fall over the 20% before the decay too. Null for curves too short to tell.
 */
export function convergence(curve: CurveRecord[], totalSteps: number, threshold = 0.02, window = 0.05): Convergence | null {
  const mean = (from: number, to: number) => {
    let s = 0;
    let n = 0;
    for (const r of curve) if (r.step > from && r.step <= to) (s += objectiveOf(r) * r.steps), (n += r.steps);
    return n > 0 ? s / n : null;
  };
  const w = Math.max(1, Math.round(window * totalSteps));
  const at80 = Math.round(0.8 * totalSteps);
  const a = mean(at80 - w, at80);
  const b = mean(totalSteps - w, totalSteps);
  if (a === null || b === null || !(a > 0)) return null;
  const relativeDrop = (a - b) / a;
  const at60 = mean(Math.round(0.6 * totalSteps) - w, Math.round(0.6 * totalSteps));
  const constantLrDrop = at60 !== null && at60 > 0 ? (at60 - a) / at60 : null;
  return { lossAt80: a, lossAtEnd: b, relativeDrop, constantLrDrop, converged: relativeDrop <= threshold, threshold };
}
