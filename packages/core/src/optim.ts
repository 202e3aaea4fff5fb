/**
 * Optimisers: Adam, AdamW and SGD (with momentum), following PyTorch's `torch.optim` update rules exactly
 * (single-tensor code path, amsgrad/nesterov/maximize off, dampening 0), so that hyper-parameters from
 * the SAE papers — which all trained with PyTorch — mean the same thing here.
 *
 * State (moments, momentum buffers) is float32 like the parameters; each element's update is computed in
 * double precision (JS numbers) and rounded once when stored. `step` allocates nothing.
 * Adam/AdamW run as a WebAssembly SIMD kernel where available (fast/kernels.wat `adam_update`: the same f64
 * operations in the same order, so bit-identical to the TypeScript loop `adamUpdateTs`, which a test checks);
 * `SAELAB_OPTIM_KERNELS=ts` forces the TypeScript loop.
 */
import { z } from 'zod';
import { type Params, type Tensor, sameShape, zeros } from './tensor.js';
import { adamUpdateWasm, wasmAdamAvailable } from './fast/wasm.js';

export const OptimizerConfig = z
  .object({
    kind: z.enum(['adam', 'adamw', 'sgd']),
    /** Base learning rate; `step(…, lr)` may override it per step (schedules). */
    lr: z.number().positive().finite(),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.999),
    eps: z.number().positive().finite().default(1e-8),
    /** adamw: decoupled (θ ← θ(1 − lr·wd)); sgd: L2 added to the gradient (PyTorch SGD); adam: must be 0. */
    weightDecay: z.number().min(0).finite().default(0),
    /** sgd only: heavy-ball momentum (PyTorch: buffer = g on the first step, then μ·buf + g). */
    momentum: z.number().min(0).lt(1).default(0),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.kind === 'adam' && c.weightDecay !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['weightDecay'],
        message: "weightDecay must be 0 for kind 'adam' (coupled L2 is not offered); use kind 'adamw' for decoupled decay",
      });
    }
    if (c.kind !== 'sgd' && c.momentum !== 0) {
      ctx.addIssue({ code: 'custom', path: ['momentum'], message: `momentum applies only to kind 'sgd', not '${c.kind}'` });
    }
  });
/** Parsed config (defaults filled in). */
export type OptimizerConfig = z.output<typeof OptimizerConfig>;
/** What callers may pass (defaults optional). */
export type OptimizerConfigInput = z.input<typeof OptimizerConfig>;

export interface OptimizerOptions {
  /** Parameters for which this returns true get no weight decay (e.g. biases, thresholds). */
  noDecay?: (name: string) => boolean;
}

/** A snapshot for exact resume: the step count and per-slot copies of the state tensors. */
export interface OptimizerState {
  step: number;
  /** Slot name (`exp_avg`, `exp_avg_sq`, `momentum_buffer`) → parameter name → tensor. */
  slots: Record<string, Params>;
}

export interface Optimizer {
  readonly config: OptimizerConfig;
  /** Number of steps taken so far. */
  readonly stepCount: number;
  /** Updates `params` in place from `grads` (same names and shapes as at creation) with learning rate `lr`. */
  step(params: Params, grads: Params, lr?: number): void;
  /** Deep copy of the state. */
  getState(): OptimizerState;
  /** Restores a state from `getState()` (copied in; shapes checked). */
  setState(state: OptimizerState): void;
  /**
   * Resets the state of parameter `name` at the flat element `indices` (resampled latents): first moments and SGD
   * momentum to 0; Adam's second moment to 0 (`secondMoment: 'zero'`, dictionary_learning) or to the mean of the
   * parameter's other entries ('mean-of-rest'). The step count is shared and kept.
   */
  resetState(name: string, indices: ArrayLike<number>, secondMoment?: 'zero' | 'mean-of-rest'): void;
}

/** Slot names per kind (PyTorch's state keys). */
function slotNames(cfg: OptimizerConfig): string[] {
  if (cfg.kind === 'sgd') return cfg.momentum > 0 ? ['momentum_buffer'] : [];
  return ['exp_avg', 'exp_avg_sq'];
}

export function createOptimizer(cfgIn: OptimizerConfigInput, params: Params, options: OptimizerOptions = {}): Optimizer {
  const parsed = OptimizerConfig.safeParse(cfgIn);
  if (!parsed.success) throw new Error(`invalid optimizer config: ${z.prettifyError(parsed.error)}`);
  const cfg = parsed.data;
  const names = Object.keys(params);
  if (names.length === 0) throw new Error('createOptimizer: no parameters');
  const shapes = names.map((n) => [...params[n]!.shape]);
  const decays = names.map((n) => (options.noDecay?.(n) ? 0 : cfg.weightDecay));
  const slots: Record<string, Params> = {};
  for (const s of slotNames(cfg)) {
    slots[s] = {};
    for (let i = 0; i < names.length; i++) slots[s]![names[i]!] = zeros(shapes[i]!);
  }
  let t = 0;

  const check = (p: Params, g: Params) => {
    for (let i = 0; i < names.length; i++) {
      const n = names[i]!;
      const pt = p[n];
      const gt = g[n];
      if (!pt) throw new Error(`optimizer.step: parameter '${n}' missing from params`);
      if (!gt) throw new Error(`optimizer.step: gradient '${n}' missing from grads`);
      if (!sameShape(pt.shape, shapes[i]!) || !sameShape(gt.shape, shapes[i]!)) {
        throw new Error(
          `optimizer.step: '${n}' expected shape [${shapes[i]!.join(', ')}] but param is [${pt.shape.join(', ')}] and grad is [${gt.shape.join(', ')}]`,
        );
      }
    }
  };

  const step = (p: Params, g: Params, lr: number = cfg.lr) => {
    if (!(Number.isFinite(lr) && lr >= 0)) throw new Error(`optimizer.step: learning rate must be finite and >= 0, got ${lr}`);
    check(p, g);
    t += 1;
    for (let i = 0; i < names.length; i++) {
      const n = names[i]!;
      const w = p[n]!.data;
      const gr = g[n]!.data;
      if (cfg.kind === 'sgd') {
        sgdUpdate(w, gr, slots.momentum_buffer?.[n]!.data, lr, decays[i]!, cfg.momentum, t === 1);
      } else {
        adamUpdate(w, gr, slots.exp_avg![n]!.data, slots.exp_avg_sq![n]!.data, lr, cfg, cfg.kind === 'adamw' ? decays[i]! : 0, t);
      }
    }
  };

  const copySlots = (from: Record<string, Params>): Record<string, Params> => {
    const out: Record<string, Params> = {};
    for (const [s, ps] of Object.entries(from)) {
      out[s] = {};
      for (const [n, ten] of Object.entries(ps)) out[s]![n] = { data: ten.data.slice(), shape: [...ten.shape] };
    }
    return out;
  };

  const setState = (state: OptimizerState) => {
    if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`optimizer.setState: invalid step ${state.step}`);
    for (const s of Object.keys(slots)) {
      const src = state.slots[s];
      if (!src) throw new Error(`optimizer.setState: slot '${s}' missing (a ${cfg.kind} state needs ${Object.keys(slots).join(', ')})`);
      for (let i = 0; i < names.length; i++) {
        const n = names[i]!;
        const ten: Tensor | undefined = src[n];
        if (!ten) throw new Error(`optimizer.setState: slot '${s}' lacks parameter '${n}'`);
        if (!sameShape(ten.shape, shapes[i]!)) {
          throw new Error(`optimizer.setState: ${s}.${n} has shape [${ten.shape.join(', ')}], expected [${shapes[i]!.join(', ')}]`);
        }
      }
    }
    for (const s of Object.keys(state.slots)) {
      if (!(s in slots)) throw new Error(`optimizer.setState: unexpected slot '${s}' for a ${cfg.kind} optimizer`);
    }
    for (const s of Object.keys(slots)) for (const n of names) slots[s]![n]!.data.set(state.slots[s]![n]!.data);
    t = state.step;
  };

  return {
    config: cfg,
    get stepCount() {
      return t;
    },
    step,
    getState: () => ({ step: t, slots: copySlots(slots) }),
    setState,
    resetState(name, indices, secondMoment = 'zero') {
      if (!names.includes(name)) throw new Error(`optimizer.resetState: no parameter named '${name}'`);
      for (const [slot, s] of Object.entries(slots)) {
        const data = s[name]!.data;
        let fill = 0;
        if (slot === 'exp_avg_sq' && secondMoment === 'mean-of-rest') {
          const reset = new Uint8Array(data.length);
          for (let k = 0; k < indices.length; k++) reset[indices[k]!] = 1;
          let sum = 0;
          let n = 0;
          for (let i = 0; i < data.length; i++) if (!reset[i]) (sum += data[i]!), n++;
          fill = n > 0 ? sum / n : 0;
        }
        for (let k = 0; k < indices.length; k++) data[indices[k]!] = fill;
      }
    },
  };
}

/** The WebAssembly Adam kernel unless unavailable or `SAELAB_OPTIM_KERNELS=ts`. */
const useWasmAdam = process.env.SAELAB_OPTIM_KERNELS !== 'ts' && wasmAdamAvailable();

/**
 * One Adam/AdamW update of a flat tensor (PyTorch `_single_tensor_adam`):
 *   θ ← θ(1 − lr·wd)                       (AdamW only, decoupled; Loshchilov & Hutter 2019)
 *   m ← β1 m + (1−β1) g,   v ← β2 v + (1−β2) g²
 *   θ ← θ − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε)
 */
function adamUpdate(
  w: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  lr: number,
  cfg: OptimizerConfig,
  decoupledDecay: number,
  t: number,
): void {
  const scalars = adamScalars(lr, cfg, decoupledDecay, t);
  if (useWasmAdam) adamUpdateWasm(w, g, m, v, scalars);
  else adamUpdateTs(w, g, m, v, scalars);
}

/** The per-step scalars of the update: stepSize = lr/(1−β1^t), bc2Sqrt = √(1−β2^t), shrink = 1 − lr·wd. */
export function adamScalars(lr: number, cfg: OptimizerConfig, decoupledDecay: number, t: number) {
  const { beta1, beta2, eps } = cfg;
  return {
    beta1,
    beta2,
    eps,
    stepSize: lr / (1 - Math.pow(beta1, t)),
    bc2Sqrt: Math.sqrt(1 - Math.pow(beta2, t)),
    shrink: 1 - lr * decoupledDecay,
  };
}

/** The update's element loop in TypeScript (the reference the WebAssembly kernel must equal bit for bit). */
export function adamUpdateTs(
  w: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  s: ReturnType<typeof adamScalars>,
): void {
  const { beta1: b1, beta2: b2, eps, stepSize, bc2Sqrt, shrink } = s;
  const n = w.length;
  for (let j = 0; j < n; j++) {
    const gj = g[j]!;
    // Read the moments back after storing so the update uses the float32 state, as PyTorch does.
    m[j] = b1 * m[j]! + (1 - b1) * gj;
    v[j] = b2 * v[j]! + (1 - b2) * gj * gj;
    w[j] = w[j]! * shrink - (stepSize * m[j]!) / (Math.sqrt(v[j]!) / bc2Sqrt + eps);
  }
}

/**
 * One SGD update (PyTorch `_single_tensor_sgd`, dampening 0, no Nesterov):
 *   d ← g + wd·θ;  with momentum μ: buf ← d on the first step, else μ·buf + d;  d ← buf;  θ ← θ − lr·d
 */
function sgdUpdate(
  w: Float32Array,
  g: Float32Array,
  buf: Float32Array | undefined,
  lr: number,
  wd: number,
  mu: number,
  first: boolean,
): void {
  const n = w.length;
  for (let j = 0; j < n; j++) {
    let d = g[j]! + wd * w[j]!;
    if (buf) {
      buf[j] = first ? d : mu * buf[j]! + d;
      d = buf[j]!;
    }
    w[j] = w[j]! - lr * d;
  }
}
