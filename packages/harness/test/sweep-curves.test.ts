/**
 * Learning curves: written during training, and an interrupted run that resumes from its checkpoint ends with the
 * same curve as an uninterrupted one (records after the checkpoint dropped, none repeated); the convergence check.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jsEngine, syntheticSparseData, writeNpyFile } from '@saelab/core';
import { trainSae } from '../src/train.js';
import { CurveWriter, convergence, readCurve } from '../src/sweep/curves.js';

const tmp = mkdtempSync(join(tmpdir(), 'sweep-curves-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('learning curves', () => {
  it('are written as training goes, and a resumed run ends with the uninterrupted curve', async () => {
    const { x } = syntheticSparseData({ rows: 1500, dIn: 10, features: 30, meanActive: 3, seed: 2 });
    const acts = join(tmp, 'acts.npy');
    await writeNpyFile(acts, x);
    const steps = 30;
    const opts = (out: string) => ({ arch: 'relu', activations: acts, out, steps, batch: 50, lr: 0.01, evalRows: 200, quiet: true, checkpointEvery: 10 });
    const run = async (out: string, file: string, abortAt?: number) => {
      const ctl = new AbortController();
      const w = new CurveWriter(file, 3, 8, 50);
      return trainSae(opts(out), {
        engine: jsEngine,
        signal: ctl.signal,
        onStep: async (s, tr) => {
          await w.onStep(s, tr);
          if (s.step === abortAt) ctl.abort();
        },
      });
    };
    const whole = join(tmp, 'whole.jsonl');
    await run(join(tmp, 'a'), whole);
    const ref = readCurve(whole);
    expect(ref.map((r) => r.step)).toEqual(Array.from({ length: 10 }, (_, i) => 3 * (i + 1)));
    expect(ref.every((r) => r.steps === 3 && r.tokens === r.step * 50 && r.deadWindow === 8)).toBe(true);
    expect(ref.every((r) => r.deadFraction >= 0 && r.deadFraction <= 1 && Number.isFinite(r.loss) && r.parts.mse! > 0)).toBe(true);

    const cut = join(tmp, 'cut.jsonl');
    const first = await run(join(tmp, 'b'), cut, 16); // aborts after step 16: the state saved there
    expect(first.interrupted).toBe(true);
    expect(readCurve(cut).map((r) => r.step)).toEqual([3, 6, 9, 12, 15]);
    const second = await run(join(tmp, 'b'), cut);
    expect(second.interrupted).toBe(false);
    const resumed = readCurve(cut);
    expect(resumed.map((r) => r.step)).toEqual(ref.map((r) => r.step));
    // The resumed run repeats no step and trains the same steps: records from the resume on match exactly; the one
    // spanning the resume point (step 18) averages only the steps after it.
    for (const [i, r] of resumed.entries()) {
      if (r.step === 18) expect(r.steps).toBe(2);
      else {
        expect(r.loss, `step ${r.step}`).toBeCloseTo(ref[i]!.loss, 6);
        expect(r.deadFraction).toBe(ref[i]!.deadFraction);
      }
    }
    expect(readFileSync(cut, 'utf8').endsWith('\n')).toBe(true);
  }, 120_000);

  it('the convergence check compares the loss at 80% of the steps with the end', () => {
    const curve = (f: (step: number) => number) =>
      Array.from({ length: 100 }, (_, i) => ({ step: i + 1, tokens: 0, steps: 1, loss: f(i + 1), parts: {}, l0: 1, fvu: 1, gradNorm: 1, lr: 1, lambda: 0, deadFraction: 0, deadWindow: 25 }));
    const flat = convergence(curve((s) => 1 + 1 / s), 100)!; // 1/s: falls 0.25% from step 80 to 100
    expect(flat.converged).toBe(true);
    const falling = convergence(curve((s) => 2 - s / 100), 100)!; // linear: loss 1.2 → 1.0, ≈ 16%
    expect(falling.converged).toBe(false);
    expect(falling.relativeDrop).toBeGreaterThan(0.1);
    expect(convergence([], 100)).toBeNull();
  });
});
