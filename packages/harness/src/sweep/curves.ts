/**
 * Learning curves of a sweep's training runs, and the convergence check the report applies to them.
 *
 * A curve is JSONL, one record per `every` steps (the means over those steps), in the point's cache folder
 * (`curves.jsonl`). It is written as training goes and survives an interrupted run: when the run resumes from its
 * checkpoint at step s, records after s are dropped (they describe steps that will be trained again) and new ones
 * are appended, so the finished file is the same as an uninterrupted run's up to floating-point identity of the steps.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { type StepStats, writeFileAtomic } from '@saelab/core';

/** One record: means over the `steps` steps ending at `step`. */
export interface CurveRecord {
  /** The step the record ends at (1-based: after `step` optimiser steps). */
  step: number;
  tokens: number;
  /** Steps averaged. */
  steps: number;
  loss: number;
  /** The architecture's named loss terms (mse, sparsity, auxk, ...). */
  parts: Record<string, number>;
  l0: number;
  fvu: number;
  gradNorm: number;
  /** Learning rate and λ at the record's last step. */
  lr: number;
  lambda: number;
  /** Latents that did not fire during the last `deadWindow` steps (a rolling window; all steps so far early on). */
  deadFraction: number;
  deadWindow: number;
}

/** What the writer needs from the trainer: its rolling dead fraction. */
export interface DeadTracker {
  deadFractionOverLast(steps: number): number;
}

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

/** Records a curve to `path` from the trainer's per-step stats. */
export class CurveWriter {
  private sum: { loss: number; l0: number; fvu: number; gradNorm: number; parts: Record<string, number> } | null = null;
  private n = 0;
  private started = false;

  /**
   * @param every steps per record
   * @param deadWindow steps of the rolling dead fraction (the sweep uses the metric's window: the last quarter)
   */
  constructor(
    readonly path: string,
    readonly every: number,
    readonly deadWindow: number,
    readonly batch: number,
  ) {
    if (!(every >= 1)) throw new Error(`CurveWriter: every must be ≥ 1, got ${every}`);
  }

  /** Call after every training step. The first call of a (resumed) run drops records after its starting step. */
  async onStep(s: StepStats, trainer: DeadTracker): Promise<void> {
    if (!this.started) {
      this.started = true;
      const kept = readCurve(this.path).filter((r) => r.step < s.step);
      await writeFileAtomic(this.path, kept.map((r) => JSON.stringify(r) + '\n').join(''));
    }
    const a = (this.sum ??= { loss: 0, l0: 0, fvu: 0, gradNorm: 0, parts: {} });
    a.loss += s.loss;
    a.l0 += s.l0;
    a.fvu += s.fvu;
    a.gradNorm += s.gradNorm;
    for (const [k, v] of Object.entries(s.parts)) a.parts[k] = (a.parts[k] ?? 0) + v;
    this.n++;
    if (s.step % this.every !== 0) return;
    const n = this.n;
    const rec: CurveRecord = {
      step: s.step,
      tokens: s.step * this.batch,
      steps: n,
      loss: a.loss / n,
      parts: Object.fromEntries(Object.entries(a.parts).map(([k, v]) => [k, v / n])),
      l0: a.l0 / n,
      fvu: a.fvu / n,
      gradNorm: a.gradNorm / n,
      lr: s.lr,
      lambda: s.sparsityCoeff,
      deadFraction: trainer.deadFractionOverLast(this.deadWindow),
      deadWindow: this.deadWindow,
    };
    appendFileSync(this.path, JSON.stringify(rec) + '\n');
    this.sum = null;
    this.n = 0;
  }
}

/** Steps per record for a run of `totalSteps` (about 200 records). */
export const curveEvery = (totalSteps: number) => Math.max(1, Math.round(totalSteps / 200));

export interface Convergence {
  /** Mean training loss over the window ending at 80% of the steps, and over the last window (each `window` of the run). */
  lossAt80: number;
  lossAtEnd: number;
  /** (lossAt80 − lossAtEnd) / lossAt80: how much the loss still fell over the last 20% of the steps. */
  relativeDrop: number;
  /** relativeDrop ≤ threshold. */
  converged: boolean;
  threshold: number;
}

/**
 * The report's convergence check: the training loss, averaged over 5% of the run, at 80% of the steps and at the
 * end; a point whose loss still fell by more than `threshold` (2%) over its last 20% is flagged. Part of that fall is
 * the lr decay of the schedule (linear to 0 over the last 20%), so a flag means "the run was still improving", not
 * necessarily "too few steps". Null for curves too short to tell.
 */
export function convergence(curve: CurveRecord[], totalSteps: number, threshold = 0.02, window = 0.05): Convergence | null {
  const mean = (from: number, to: number) => {
    let s = 0;
    let n = 0;
    for (const r of curve) if (r.step > from && r.step <= to) (s += r.loss * r.steps), (n += r.steps);
    return n > 0 ? s / n : null;
  };
  const w = Math.max(1, Math.round(window * totalSteps));
  const at80 = Math.round(0.8 * totalSteps);
  const a = mean(at80 - w, at80);
  const b = mean(totalSteps - w, totalSteps);
  if (a === null || b === null || !(a > 0)) return null;
  const relativeDrop = (a - b) / a;
  return { lossAt80: a, lossAtEnd: b, relativeDrop, converged: relativeDrop <= threshold, threshold };
}
