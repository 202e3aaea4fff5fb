import { describe, expect, it } from 'vitest';
import { L0Controller, defaultL0ControllerOptions } from '../src/sae/l0-controller.js';
import { Rng } from '../src/rng.js';

/**
 * A synthetic plant with a known answer: the stationary L0 at λ is exp(c_t − s·ln λ) (a power law whose level
 * c_t drifts down slowly, as L1-style training keeps lowering L0), reached with a first-order lag of τ steps,
 * measured per batch with 8% multiplicative noise. At the freeze step the right λ is exp((c_t − ln target)/s).
 */
function simulate(o: { s: number; tau: number; steps: number; warmup: number; target: number; start: number; drift: number; seed: number }) {
  const rng = new Rng(o.seed);
  const c0 = Math.log(20) + o.s * Math.log(1); // L0 = 20 at λ = 1 at the start
  const opts = defaultL0ControllerOptions(o.target, o.start, o.steps, o.warmup);
  const ctl = new L0Controller(opts);
  let lnL0 = Math.log(200); // the SAE starts dense
  let lambdaAtFreeze = NaN;
  for (let t = 0; t < o.steps; t++) {
    const warm = o.warmup > 0 ? Math.min(1, t / o.warmup) : 1;
    const lam = Math.max(1e-12, ctl.lambda() * warm);
    const c = c0 - (o.drift * t) / o.steps;
    const stationary = c - o.s * Math.log(lam);
    lnL0 += (stationary - lnL0) / o.tau;
    ctl.observe(Math.exp(lnL0) * (1 + 0.08 * rng.normal()));
    if (t + 1 === opts.freezeStep) lambdaAtFreeze = ctl.lambda();
  }
  const cFreeze = c0 - (o.drift * opts.freezeStep) / o.steps;
  return { ctl, lambdaAtFreeze, wantLambda: Math.exp((cFreeze - Math.log(o.target)) / o.s), finalL0: Math.exp(lnL0), opts };
}

describe('L0 controller on λ', () => {
  for (const s of [0.7, 1, 1.5])
    for (const tau of [5, 30])
      for (const start of [0.05, 20])
        it(`reaches the λ of the target at the freeze (slope ${s}, lag ${tau} steps, start λ ${start})`, () => {
          const r = simulate({ s, tau, steps: 2000, warmup: 200, target: 8, start, drift: 0.1, seed: 1 });
          expect(Math.abs(Math.log(r.lambdaAtFreeze / r.wantLambda))).toBeLessThan(0.05 / s + 0.02);
          // λ is held fixed after the freeze.
          expect(r.ctl.lambda()).toBe(r.lambdaAtFreeze);
          expect(r.ctl.frozen).toBe(true);
        });

  it('also on a short run (400 steps, the default preset’s length)', () => {
    const r = simulate({ s: 1.2, tau: 10, steps: 400, warmup: 40, target: 16, start: 1, drift: 0.05, seed: 2 });
    expect(Math.abs(Math.log(r.lambdaAtFreeze / r.wantLambda))).toBeLessThan(0.08);
  });

  it('does nothing during warm-up and resumes exactly from its state', () => {
    const opts = defaultL0ControllerOptions(8, 0.5, 1000, 100);
    const a = new L0Controller(opts);
    for (let t = 0; t < 100; t++) a.observe(100);
    expect(a.lambda()).toBe(0.5);
    for (let t = 0; t < 50; t++) a.observe(30);
    const b = new L0Controller(opts);
    b.importState(JSON.parse(JSON.stringify(a.exportState())));
    for (let t = 0; t < 30; t++) {
      a.observe(20 - t * 0.1);
      b.observe(20 - t * 0.1);
    }
    expect(b.lambda()).toBe(a.lambda());
    expect(a.lambda()).toBeGreaterThan(0.5); // L0 above target raised λ
  });

  it('rejects bad options and observations with one-line errors', () => {
    expect(() => new L0Controller({ ...defaultL0ControllerOptions(8, 1, 100, 10), target: 0 })).toThrow(/L0 controller: target/);
    const c = new L0Controller(defaultL0ControllerOptions(8, 1, 100, 10));
    expect(() => c.observe(Number.NaN)).toThrow(/batch L0 must be a finite number/);
  });
});
