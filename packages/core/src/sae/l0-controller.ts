/**
 * One-pass L0 targeting: a controller on the sparsity coefficient λ during training, so a λ-based SAE lands on a
 * target L0 in one run instead of after several calibration probes (issue 15, part 2).
 *
 * Plant: L0 responds to λ roughly as a power law, ln L0 ≈ c − s·ln λ (s ≈ 1–1.5 for L1- and L0-style
 * penalties), with a lag while the encoder adapts. Controller: proportional–integral on u = ln λ in velocity form,
 *   e_t = ln L̄0_t − ln target,        u_{t+1} = u_t + k_i·e_t + k_p·(e_t − e_{t−1}),
 * with L̄0 an exponential moving average of the training batches' L0 (time constant `window` steps), the step
 * |Δu| bounded by `maxStep` (no violent moves on a noisy batch), and λ clamped to [minLambda, maxLambda].
 * It acts only between `startStep` (the end of λ warm-up: during warm-up L0 is high by design and an integrator
 * would wind up) and `freezeStep`; λ is then held fixed so the last part of training sees one stationary loss,
 * like any fixed-λ run (default: frozen for the last 20%, the lr-decay phase of the schedule family).
 * The gains default from the run length: k_i = 1 / (s₀·T) with T = 6% of the active steps (s₀ = 1) — the loop
 * settles a few times T before the freeze — and k_p = k_i·window/2, a zero that cancels most of the averaging lag.
 * This is the multiplicative update of a "target-L0" penalty (e.g. sparsify's or Anthropic's schedules of the
 * sparsity coefficient); our departure is the PI form with a freeze, so the final λ is a plain fixed λ.
 */
import { z } from 'zod';

export const l0ControllerOptionsSchema = z
  .object({
    target: z.number().positive(),
    initialLambda: z.number().positive(),
    startStep: z.number().int().nonnegative(),
    freezeStep: z.number().int().nonnegative(),
    /** EMA time constant of the measured L0, in steps. */
    window: z.number().positive(),
    ki: z.number().nonnegative(),
    kp: z.number().nonnegative(),
    maxStep: z.number().positive().default(0.1),
    minLambda: z.number().positive().default(1e-8),
    maxLambda: z.number().positive().default(1e4),
  })
  .strict()
  .refine((o) => o.freezeStep >= o.startStep, { message: 'freezeStep must not be before startStep' });
export type L0ControllerOptions = z.input<typeof l0ControllerOptionsSchema>;

/** Default controller settings for a run of `totalSteps` with `warmupSteps` of λ warm-up. */
export function defaultL0ControllerOptions(target: number, initialLambda: number, totalSteps: number, warmupSteps: number, freezeFraction = 0.8): L0ControllerOptions {
  const startStep = Math.min(totalSteps, warmupSteps);
  const freezeStep = Math.max(startStep, Math.round(freezeFraction * totalSteps));
  const active = Math.max(1, freezeStep - startStep);
  const window = Math.max(4, Math.round(0.02 * active));
  const T = Math.max(8, 0.06 * active);
  const ki = 1 / T;
  return { target, initialLambda, startStep, freezeStep, window, ki, kp: (ki * window) / 2 };
}

export interface L0ControllerState {
  logLambda: number;
  ema: number | null;
  lastError: number | null;
  steps: number;
}

export class L0Controller {
  readonly options: z.output<typeof l0ControllerOptionsSchema>;
  private logLambda: number;
  private ema: number | null = null;
  private lastError: number | null = null;
  /** Observations so far (= the trainer's step after each call). */
  private steps = 0;

  constructor(options: L0ControllerOptions) {
    const r = l0ControllerOptionsSchema.safeParse(options);
    if (!r.success) throw new Error(`L0 controller: ${r.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ')}`);
    this.options = r.data;
    this.logLambda = Math.log(r.data.initialLambda);
  }

  /** λ for the next step (before the trainer's warm-up factor). */
  lambda(): number {
    return Math.exp(this.logLambda);
  }

  /** Whether λ is held fixed from now on. */
  get frozen(): boolean {
    return this.steps >= this.options.freezeStep;
  }

  /** The smoothed L0 the controller acts on (null before the first observation). */
  get smoothedL0(): number | null {
    return this.ema;
  }

  /** Feed the L0 of the batch just trained on (mean active latents per row). */
  observe(batchL0: number): void {
    if (!Number.isFinite(batchL0) || batchL0 < 0) throw new Error(`L0 controller: batch L0 must be a finite number ≥ 0, got ${batchL0}`);
    const o = this.options;
    this.ema = this.ema === null ? batchL0 : this.ema + (batchL0 - this.ema) / o.window;
    this.steps++;
    if (this.steps <= o.startStep || this.steps > o.freezeStep) return;
    const e = Math.log(Math.max(this.ema, 1e-2)) - Math.log(o.target);
    const de = this.lastError === null ? 0 : e - this.lastError;
    this.lastError = e;
    const du = Math.max(-o.maxStep, Math.min(o.maxStep, o.ki * e + o.kp * de));
    this.logLambda = Math.max(Math.log(o.minLambda), Math.min(Math.log(o.maxLambda), this.logLambda + du));
  }

  exportState(): L0ControllerState {
    return { logLambda: this.logLambda, ema: this.ema, lastError: this.lastError, steps: this.steps };
  }

  importState(s: L0ControllerState): void {
    this.logLambda = s.logLambda;
    this.ema = s.ema;
    this.lastError = s.lastError;
    this.steps = s.steps;
  }
}
