/**
 * Learning curves: trainRun records them, carries them through its checkpoints, and an interrupted run that resumes
 * ends with the same curve as an uninterrupted one (same steps, same values, none repeated; the record spanning
 * the resume averages only the steps after it); the file round trip;
 * the rolling dead fraction ends equal to the training-window metric; the convergence check.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type TrainingState, jsEngine, syntheticSparseData } from '@saelab/core';
import { splitHeldOut } from '../src/data.js';
import { trainRun } from '../src/train-run.js';
import { type CurveRecord, convergence, readCurve, writeCurve } from '../src/sweep/curves.js';

const tmp = mkdtempSync(join(tmpdir(), 'sweep-curves-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('learning curves', () => {
  it('survive an interruption: the resumed run ends with the uninterrupted curve, and the file round-trips', async () => {
    const { x } = syntheticSparseData({ rows: 1500, dIn: 10, features: 30, meanActive: 3, seed: 2 });
    const src = { rows: 1500, d: 10, readRows: async (s: number, n: number) => x.data.slice(s * 10, (s + n) * 10) };
    const { train, heldOut } = splitHeldOut(src, 200);
    const spec = { arch: 'relu', train, heldOut, steps: 30, batch: 50, lr: 0.01, sparsity: 0.5, curveEvery: 3, engine: jsEngine };
    const whole = await trainRun(spec);
    const ref = whole.curves;
    expect(ref.map((r) => r.step)).toEqual(Array.from({ length: 10 }, (_, i) => 3 * (i + 1)));
    expect(ref.every((r) => r.steps === 3 && r.tokens === r.step * 50 && r.deadWindow === 30 - Math.floor(0.75 * 30))).toBe(true);
    expect(ref.every((r) => r.deadFractionRolling >= 0 && r.deadFractionRolling <= 1 && Number.isFinite(r.loss) && r.parts.mse! > 0)).toBe(true);
    expect(ref[ref.length - 1]!.deadFractionRolling).toBeCloseTo(whole.deadFractionTrainWindow, 12);

    // Interrupt after step 16, then resume from the checkpoint.
    const ctl = new AbortController();
    const first = await trainRun({ ...spec, signal: ctl.signal, onStep: (s) => void (s.step === 16 && ctl.abort()) });
    expect(first.interrupted).toBe(true);
    const saved = JSON.parse(JSON.stringify(first.checkpoint!.json)) as TrainingState['json']; // as a state file holds it
    const second = await trainRun({ ...spec, resume: { ...first.checkpoint!, json: saved } });
    expect(second.interrupted).toBe(false);
    const resumed = second.curves;
    expect(resumed.map((r) => r.step)).toEqual(ref.map((r) => r.step));
    // The steps after the resume are the same steps; the record spanning it (step 18) averages only steps 17–18.
    for (const [i, r] of resumed.entries()) {
      if (r.step === 18) {
        expect(r.steps).toBe(2);
        continue;
      }
      expect(r.loss, `step ${r.step}`).toBeCloseTo(ref[i]!.loss, 6);
      expect(r.deadFractionRolling, `step ${r.step}`).toBe(ref[i]!.deadFractionRolling);
    }
    const file = join(tmp, 'curves.jsonl');
    await writeCurve(file, resumed);
    expect(readCurve(file)).toEqual(JSON.parse(JSON.stringify(resumed)));
  }, 120_000);

  it('the convergence check compares the loss at 80% of the steps with the end', () => {
    const curve = (f: (step: number) => number): CurveRecord[] =>
      Array.from({ length: 100 }, (_, i) => ({ step: i + 1, tokens: 0, steps: 1, loss: f(i + 1), parts: {}, l0: 1, fvu: 1, gradNorm: 1, lr: 1, lambda: 0, deadFraction: 0, deadFractionRolling: 0, deadWindow: 25 }));
    const flat = convergence(curve((s) => 1 + 1 / s), 100)!; // 1/s: falls 0.25% from step 80 to 100
    expect(flat.converged).toBe(true);
    const falling = convergence(curve((s) => 2 - s / 100), 100)!; // linear: loss 1.2 → 1.0, ≈ 16%
    expect(falling.converged).toBe(false);
    expect(falling.relativeDrop).toBeGreaterThan(0.1);
    expect(convergence([], 100)).toBeNull();
  });
});
