/**
 * `saelab train`: the command-line adapter around `trainRun` (train-run.ts) — flags, the progress bar, the
 * resumable state file next to the output (Ctrl-C leaves it; the same command resumes), and the SAELens folder
 * with the normalisation folded in and the held-out metrics and run provenance in cfg.json.
 */
import { rm, stat } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import { z } from 'zod';
import { type GemmEngine, type MetricsSummary, type StepStats, type TrainingState, loadTrainingState, saveTrainingState } from '@saelab/core';
import { type ActivationInput, openActivations, splitHeldOut } from './data.js';
import { metricsJson } from './evaluate.js';
import { ARCH_NAMES, getArchitecture, nameList } from './registry.js';
import { loadSae, saveSae } from './sae-folder.js';
import { type CurvePoint, ResumeMismatchError, type TrainRunResult, trainRun } from './train-run.js';

export const trainOptionsSchema = z
  .object({
    arch: z.enum(ARCH_NAMES as [string, ...string[]]),
    activations: z.string().min(1),
    out: z.string().min(1),
    /** The sparsity value of architectures whose sparsity is a coefficient λ (relu, gated, jumprelu, ...). */
    sparsity: z.number().nonnegative().optional(),
    /** The sparsity value of architectures whose sparsity is k, the active latents (topk, batchtopk, ...). */
    k: z.number().int().positive().optional(),
    dSae: z.number().int().positive().optional(),
    expansion: z.number().positive().optional(),
    steps: z.number().int().positive().optional(),
    tokens: z.number().int().positive().optional(),
    batch: z.number().int().positive().default(4096),
    lr: z.number().positive().optional(),
    optimizer: z.enum(['adam', 'sgd']).optional(),
    seed: z.number().int().nonnegative().default(0),
    init: z.string().optional(),
    normalize: z.enum(['auto', 'none']).default('auto'),
    /** b_dec at init: zero (spec default) or the geometric median of a training sample (Gao et al. 2024, TopK). */
    bDecInit: z.enum(['zero', 'geometric-median']).default('zero'),
    lrWarmup: z.number().int().nonnegative().optional(),
    sparsityWarmup: z.number().int().nonnegative().optional(),
    lrSchedule: z.enum(['constant', 'cosine', 'linear-decay']).optional(),
    gradClip: z.number().nonnegative().optional(),
    /** Dead-latent resampling: default the recipe's (ReLU, Gated); false = off, true = on (trainRun `resample`). */
    resample: z.boolean().optional(),
    /** Held-out rows at the end of the input, for the metrics in cfg.json (0: train on every row, no metrics). */
    evalRows: z.number().int().nonnegative().optional(),
    checkpointEvery: z.number().int().positive().default(200),
    /** Architectures with dead-latent tracking (AuxK): tokens without firing before a latent counts as dead (default: min(10M, training tokens / 10)). */
    deadTokens: z.number().int().positive().optional(),
    bufferRows: z.number().int().positive().default(65_536),
    /** Extra provenance (e.g. the activation store's source and site). */
    hookName: z.string().optional(),
    modelName: z.string().optional(),
    quiet: z.boolean().default(false),
    /**
     * One-pass L0 targeting (λ-based architectures): a controller moves λ during training so the run lands on
     * this mean L0 (core sae/l0-controller.ts); --sparsity, if given, is its starting λ. The controller acts to the
     * last step (trainRun's `l0ControllerFreeze`, default 1); the final λ is saved in the SAE's provenance.
     */
    l0Target: z.number().positive().optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    const bad = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (o.dSae !== undefined && o.expansion !== undefined) bad('dSae', 'give --d-sae or --expansion, not both');
    if (o.steps !== undefined && o.tokens !== undefined) bad('steps', 'give --steps or --tokens, not both');
    // The sparsity value travels in the option the architecture names (`--sparsity` for λ, `--k` for k).
    const arch = getArchitecture(o.arch);
    for (const flag of ['sparsity', 'k'] as const) {
      if (o[flag] === undefined || flag === arch.sparsity.flag) continue;
      const users = ARCH_NAMES.filter((a) => getArchitecture(a).sparsity.flag === flag);
      bad(flag, arch.sparsity.flag === 'sparsity' ? `--${flag} applies only to --arch ${nameList(users)}, not ${o.arch}` : `${o.arch} is controlled by --${arch.sparsity.flag}, not --${flag}`);
    }
    if (o.deadTokens !== undefined && !arch.runOptions?.includes('deadTokens')) {
      bad('deadTokens', `--dead-tokens applies only to --arch ${nameList(ARCH_NAMES.filter((a) => getArchitecture(a).runOptions?.includes('deadTokens')))}`);
    }
    if (o.init !== undefined && o.bDecInit !== 'zero') bad('bDecInit', '--b-dec-init does not apply with --init (its b_dec is kept exactly)');
    if (o.l0Target !== undefined && arch.sparsity.forL0Target(o.l0Target) !== null) bad('l0Target', `${o.arch} sets its L0 with --${arch.sparsity.flag}; --l0-target is for λ-based architectures`);
  });
export type TrainOptions = z.input<typeof trainOptionsSchema>;

/** Parses options with an error naming each bad field. */
export function parseTrainOptions(input: unknown) {
  const r = trainOptionsSchema.safeParse(input);
  if (!r.success) throw new Error(`invalid training options:\n${r.error.issues.map((i) => `  --${kebab(String(i.path[0] ?? ''))}: ${i.message}`).join('\n')}`);
  return r.data;
}
const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export interface TrainResult {
  out: string;
  steps: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  normScale: number;
  /** Held-out metrics; null with `--eval-rows 0`. */
  metrics: MetricsSummary | null;
  /** The sparsity value at the end (the controller's frozen λ with --l0-target). */
  finalSparsity: number;
  /** Latents that never fired during the last quarter of training (the metric's "training window"). */
  deadFractionTrainWindow: number;
  interrupted: boolean;
  curves: CurvePoint[];
}

export function statePathFor(out: string): string {
  return `${out.replace(/\/+$/, '')}.train-state.safetensors`;
}

/** A training-state file as `trainRun`'s checkpoint store: load (if present), save atomically, remove. */
export function stateFile(path: string) {
  return {
    path,
    load: async (): Promise<TrainingState | undefined> => ((await exists(path)) ? loadTrainingState(path) : undefined),
    save: (state: TrainingState) => saveTrainingState(path, state),
    remove: () => rm(path, { force: true }),
  };
}

/** Where a trained SAE's folder comes from, for its cfg.json. */
export interface TrainedSaeOrigin {
  dataFingerprint: string;
  data: string;
  seed: number;
  hookName?: string;
  modelName?: string;
}

/** Writes a finished run as an SAELens folder: the folded weights, the metrics and the run's provenance. */
export async function saveTrainedSae(dir: string, r: TrainRunResult, origin: TrainedSaeOrigin): Promise<void> {
  await saveSae(dir, r.arch, r.cfg, r.params, {
    hookName: origin.hookName,
    modelName: origin.modelName,
    provenance: {
      config: r.runConfig,
      config_hash: r.configHash,
      data_fingerprint: origin.dataFingerprint,
      data: origin.data,
      seed: origin.seed,
      norm_scale: r.normScale,
      steps: r.steps,
      tokens: r.tokens,
      train_seconds: r.seconds,
      tokens_per_second: r.tokensPerSecond,
      metrics: r.metrics ? metricsJson(r.metrics) : null,
      dead_fraction_training_window: { value: r.deadFractionTrainWindow, steps: r.firingWindow },
      resampled_latents: r.resampledLatents,
      ...(r.runConfig.l0Target !== undefined ? { l0_controller: { target: r.runConfig.l0Target, initial_lambda: (r.runConfig.trainer as { sparsity: number }).sparsity, final_lambda: r.finalSparsity } } : {}),
    },
  });
}

/** Trains one SAE from the command line's options. `signal` aborts cleanly (state saved) — the CLI wires it to Ctrl-C. */
export async function trainSae(
  input: TrainOptions,
  hooks: { signal?: AbortSignal; engine?: GemmEngine; source?: ActivationInput } = {},
): Promise<TrainResult> {
  const o = parseTrainOptions(input);
  const arch = getArchitecture(o.arch);
  const data = hooks.source ?? (await openActivations(o.activations));
  try {
    const { train, heldOut } = splitHeldOut(data, o.evalRows);
    const init = o.init ? await loadSae(o.init) : null;
    if (init && init.arch !== arch) throw new Error(`--init ${o.init} holds a ${init.arch.name} SAE but --arch is ${o.arch}`);
    const steps = o.steps ?? Math.max(1, Math.ceil((o.tokens ?? train.rows) / o.batch));
    const state = stateFile(statePathFor(o.out));
    const resume = await state.load();
    if (resume && !o.quiet) process.stderr.write(`resuming from ${state.path} at step ${resume.step}/${steps}\n`);
    const bar = o.quiet ? null : trainingProgress(arch.name, o.batch);
    bar?.start(steps, resume?.step ?? 0);
    let r: TrainRunResult;
    try {
      r = await trainRun({
        arch,
        train,
        heldOut,
        dSae: o.dSae,
        expansion: o.expansion,
        steps,
        batch: o.batch,
        seed: o.seed,
        sparsity: o[arch.sparsity.flag],
        l0Target: o.l0Target,
        lr: o.lr,
        optimizer: o.optimizer,
        lrWarmup: o.lrWarmup,
        sparsityWarmup: o.sparsityWarmup,
        lrSchedule: o.lrSchedule,
        gradClip: o.gradClip,
        resample: o.resample,
        normalize: o.normalize,
        bDecInit: o.bDecInit,
        init: init ? { cfg: init.cfg, params: init.params, label: o.init! } : null,
        deadTokens: o.deadTokens,
        bufferRows: o.bufferRows,
        dataFingerprint: data.fingerprint,
        engine: hooks.engine,
        signal: hooks.signal,
        resume,
        checkpointEvery: o.checkpointEvery,
        onCheckpoint: state.save,
        onStep: bar?.onStep,
      });
    } catch (e) {
      if (e instanceof ResumeMismatchError) {
        throw new Error(`${state.path} holds a training state for a different configuration; delete it to start over, or use another --out`);
      }
      throw e;
    } finally {
      bar?.stop();
    }
    if (r.interrupted) {
      await state.save(r.checkpoint!);
      process.stderr.write(`interrupted at step ${r.steps}/${steps}; state saved to ${state.path} — run the same command to resume\n`);
    } else {
      await saveTrainedSae(o.out, r, { dataFingerprint: data.fingerprint, data: data.description, seed: o.seed, hookName: o.hookName ?? data.site, modelName: o.modelName ?? data.source });
      await state.remove();
    }
    const { steps: done, tokens, seconds, tokensPerSecond, normScale, metrics, finalSparsity, deadFractionTrainWindow, interrupted, curves } = r;
    return { out: o.out, steps: done, tokens, seconds, tokensPerSecond, normScale, metrics, finalSparsity, deadFractionTrainWindow, interrupted, curves };
  } finally {
    if (!hooks.source) await data.close();
  }
}

/** A progress bar on stderr for one training run (periodic lines when stderr is not a terminal). */
export function trainingProgress(name: string, batch: number) {
  const bar = new cliProgress.SingleBar(
    {
      format: `${name} {bar} {value}/{total} steps | loss {loss} | L0 {l0} | FVU {fvu} | {tps} tok/s | ETA {eta_formatted}`,
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  return {
    start: (steps: number, at: number) => bar.start(steps, at, { loss: '-', l0: '-', fvu: '-', tps: '-' }),
    onStep: (s: StepStats, run: { startStep: number; seconds: number }) =>
      bar.update(s.step, {
        loss: s.loss.toPrecision(4),
        l0: s.l0.toFixed(1),
        fvu: s.fvu.toFixed(3),
        tps: Math.round(((s.step - run.startStep) * batch) / run.seconds),
      }),
    stop: () => bar.stop(),
  };
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
