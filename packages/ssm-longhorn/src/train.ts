/**
 * Training loop for LonghornLM (and any TrainableLM, e.g. the Transformer baseline): AdamW (decoupled weight decay, none on biases/norms/D/A_log as in the official
 * code), linear warm-up + cosine decay, global gradient clipping, a seeded data function of the step (so resume is
 * exact without a data cursor), atomic checkpoints that resume, and a progress bar with loss and tokens/s.
 *
 * A model folder holds `model.safetensors` (official parameter names) + `config.json`; training adds
 * `training_state.safetensors` (params, AdamW moments, step, config) for exact resume.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import cliProgress from 'cli-progress';
import {
  type GemmEngine, type Params, clipGradNorm, createOptimizer, loadTrainingState, lrAt, readSafetensorsFile,
  saveTrainingState, writeFileAtomic, writeSafetensorsFile,
} from '@saelab/core';
import { type LonghornConfigInput, LonghornLM, parseConfig } from './model.js';

export const MODEL_FILE = 'model.safetensors';
export const CONFIG_FILE = 'config.json';
export const STATE_FILE = 'training_state.safetensors';

export const TrainConfigSchema = z
  .object({
    lr: z.number().positive(),
    weightDecay: z.number().min(0).default(0.1),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.98),
    warmupSteps: z.number().int().min(0).default(0),
    totalSteps: z.number().int().positive(),
    /** cosine floor as a fraction of lr. */
    minLrFraction: z.number().min(0).max(1).default(0.1),
    gradClip: z.number().min(0).default(1),
    seed: z.number().int().default(0),
    /** Save a checkpoint every this many steps (0 = only at the end). */
    checkpointEvery: z.number().int().min(0).default(0),
  })
  .strict();
export type TrainConfig = z.output<typeof TrainConfigSchema>;
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;

/** One training batch: tokens [B, L] and per-position targets (IGNORE = not scored). */
export interface Batch {
  tokens: Int32Array;
  targets: Int32Array;
  batch: number;
  seqLen: number;
}

export interface StepLog {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Argmax accuracy over scored positions of this batch. */
  acc: number;
  tokensPerSec: number;
}

export interface TrainOptions {
  /** Deterministic batch for a 0-based step (seed it from the step for exact resume). */
  data: (step: number) => Batch;
  /** Folder for checkpoints; resumes from its training state if present. */
  dir?: string;
  progress?: boolean;
  /** Called after every step; return true to stop early (e.g. target accuracy reached). */
  onStep?: (log: StepLog) => boolean | void | Promise<boolean | void>;
}

/** What `train` needs of a model: parameters, a JSON config (checkpoints refuse to resume across configs) and a loss with gradients. */
export interface TrainableLM {
  readonly config: object;
  readonly params: Params;
  lossAndGrad(tokens: Int32Array, targets: Int32Array, B: number, L: number): Promise<{ loss: number; count: number; correct: number; grads: Params }>;
}

/** No weight decay for biases, norm gains, D and A_log (Mamba's `_no_weight_decay`). */
export const noDecay = (name: string) => name.endsWith('.bias') || name.includes('norm') || name.endsWith('.D') || name.endsWith('.A_log');

/** Writes `model.safetensors` + `config.json` into `dir` (each atomically). */
export async function saveModel(dir: string, lm: TrainableLM, metadata: Record<string, string> = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeSafetensorsFile(join(dir, MODEL_FILE), lm.params, { format: 'saelab-longhorn', ...metadata });
  await writeFileAtomic(join(dir, CONFIG_FILE), JSON.stringify(lm.config, null, 2) + '\n');
}

/** Loads a model folder written by `saveModel` (config validated, parameter names and shapes checked). */
export async function loadModel(dir: string, engine?: GemmEngine): Promise<LonghornLM> {
  const cfgPath = join(dir, CONFIG_FILE);
  if (!existsSync(cfgPath)) throw new Error(`${dir}: missing ${CONFIG_FILE} (a Longhorn model folder holds ${MODEL_FILE} and ${CONFIG_FILE})`);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(cfgPath, 'utf8'));
  } catch (e) {
    throw new Error(`${cfgPath}: invalid JSON (${(e as Error).message})`);
  }
  const config = parseConfig(raw as LonghornConfigInput);
  const { tensors } = await readSafetensorsFile(join(dir, MODEL_FILE));
  return new LonghornLM(config, tensors, engine);
}

/**
 * Trains `lm` in place for `cfg.totalSteps` steps (resuming from `opts.dir` when it holds a training state
 * for the same model config). Returns the per-step logs of this run.
 */
export async function train(lm: TrainableLM, cfgIn: TrainConfigInput, opts: TrainOptions): Promise<StepLog[]> {
  const cfg = TrainConfigSchema.parse(cfgIn);
  const opt = createOptimizer(
    { kind: 'adamw', lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, weightDecay: cfg.weightDecay },
    lm.params,
    { noDecay },
  );
  let start = 0;
  const statePath = opts.dir ? join(opts.dir, STATE_FILE) : null;
  if (statePath && existsSync(statePath)) start = await resume(lm, opt, statePath, cfg);
  const schedule = { kind: 'cosine' as const, warmupSteps: cfg.warmupSteps, totalSteps: cfg.totalSteps, minLrFraction: cfg.minLrFraction };
  const bar = opts.progress
    ? new cliProgress.SingleBar(
        {
          format: 'train [{bar}] {value}/{total} | loss {loss} | acc {acc} | {tps} tok/s | eta {eta_formatted}',
          stream: process.stderr,
          hideCursor: true,
          noTTYOutput: true, // still report (every 10 s) when stderr is a log file
          notTTYSchedule: 10_000,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(cfg.totalSteps, start, { loss: '-', acc: '-', tps: '-' });
  const logs: StepLog[] = [];
  const save = async (step: number) => {
    if (!opts.dir || !statePath) return;
    await saveModel(opts.dir, lm, { step: String(step) });
    const st = opt.getState();
    await saveTrainingState(statePath, { step, params: lm.params, optimizer: st, json: { model: lm.config, train: cfg } });
  };
  for (let step = start; step < cfg.totalSteps; step++) {
    const t0 = performance.now();
    const b = opts.data(step);
    const { loss, count, correct, grads } = await lm.lossAndGrad(b.tokens, b.targets, b.batch, b.seqLen);
    if (!Number.isFinite(loss)) throw new Error(`train: loss is ${loss} at step ${step}`);
    const gradNorm = clipGradNorm(grads, cfg.gradClip);
    const lr = lrAt(step, cfg.lr, schedule);
    opt.step(lm.params, grads, lr);
    const log: StepLog = { step, loss, lr, gradNorm, acc: count ? correct / count : 0, tokensPerSec: (b.batch * b.seqLen) / ((performance.now() - t0) / 1000) };
    logs.push(log);
    bar?.update(step + 1, { loss: loss.toFixed(4), acc: log.acc.toFixed(3), tps: log.tokensPerSec.toFixed(0) });
    const stop = await opts.onStep?.(log);
    if (cfg.checkpointEvery > 0 && (step + 1) % cfg.checkpointEvery === 0) await save(step + 1);
    if (stop) {
      await save(step + 1);
      break;
    }
  }
  bar?.stop();
  if (logs.length && logs[logs.length - 1]!.step === cfg.totalSteps - 1) await save(cfg.totalSteps);
  return logs;
}

async function resume(lm: TrainableLM, opt: ReturnType<typeof createOptimizer>, path: string, cfg: TrainConfig): Promise<number> {
  const st = await loadTrainingState(path);
  const json = st.json as { model?: unknown; train?: Record<string, unknown> };
  const saved = JSON.stringify(json.model);
  if (saved !== JSON.stringify(lm.config)) throw new Error(`${path}: checkpoint was written for model config ${saved}, not ${JSON.stringify(lm.config)}`);
  // A changed lr, schedule length or optimiser setting would silently bend the rest of the run: refuse
  // (how often checkpoints are written may change).
  const changed = Object.keys(cfg).filter(
    (k) => k !== 'checkpointEvery' && json.train && JSON.stringify(json.train[k]) !== JSON.stringify(cfg[k as keyof TrainConfig]),
  );
  if (changed.length) {
    throw new Error(`${path}: checkpoint was written with other training settings (${changed.map((k) => `${k}: ${JSON.stringify(json.train![k])} → ${JSON.stringify(cfg[k as keyof TrainConfig])}`).join(', ')}); use another folder to start over`);
  }
  copyParams(lm.params, st.params, path);
  opt.setState(st.optimizer);
  return st.step;
}

function copyParams(into: Params, from: Params, where: string): void {
  for (const [name, t] of Object.entries(into)) {
    const s = from[name];
    if (!s || s.data.length !== t.data.length) throw new Error(`${where}: parameter '${name}' missing or mis-shaped`);
    t.data.set(s.data);
  }
}
