/**
 * `saelab train`: streams activations, trains one SAE with its paper's recipe, checkpoints atomically (Ctrl-C leaves
 * a resumable state), evaluates on a held-out tail and writes an SAELens folder with the normalisation folded in.
 */
import { rm, stat } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import { z } from 'zod';
import {
  type ArchName,
  type BaseSaeConfig,
  type GemmEngine,
  type MetricsSummary,
  Rng,
  SaeTrainer,
  ShuffledBatchStream,
  type StreamPosition,
  defaultEngine,
  defaultSparsityFor,
  estimateNormScale,
  foldInputScale,
  geometricMedian,
  loadTrainingState,
  recipeOptions,
  sampleRows,
  saveTrainingState,
  scaleRows,
  OptimizerConfig,
  L0Controller,
  defaultL0ControllerOptions,
} from '@saelab/core';
import { type ActivationInput, openActivations, splitHeldOut } from './data.js';
import { evaluateSae, metricsJson } from './evaluate.js';
import { ARCH_NAMES, K_ARCH_NAMES, getArchitecture } from './registry.js';
import { hashOf } from './hash.js';
import { CODE_VERSION, loadSae, saveSae } from './sae-folder.js';

export const trainOptionsSchema = z
  .object({
    arch: z.enum(ARCH_NAMES as [string, ...string[]]),
    activations: z.string().min(1),
    out: z.string().min(1),
    /** λ for relu / gated / jumprelu. */
    sparsity: z.number().nonnegative().optional(),
    /** k for topk and batchtopk. */
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
    /**
     * One-pass L0 targeting (λ-based architectures): a controller moves λ during training so the run lands on
     * this mean L0 (core sae/l0-controller.ts); --sparsity, if given, is its starting λ. λ is frozen for the
     * last 20% of steps; the final λ is saved in the SAE's provenance.
     */
    l0Target: z.number().positive().optional(),
    /** Held-out rows at the end of the input, for the metrics in cfg.json. */
    evalRows: z.number().int().nonnegative().optional(),
    checkpointEvery: z.number().int().positive().default(200),
    /** TopK / BatchTopK: tokens without firing before a latent counts as dead (default: min(10M, training tokens / 10)). */
    deadTokens: z.number().int().positive().optional(),
    bufferRows: z.number().int().positive().default(65_536),
    /** Extra provenance (e.g. the activation store's source and site). */
    hookName: z.string().optional(),
    modelName: z.string().optional(),
    quiet: z.boolean().default(false),
  })
  .strict()
  .superRefine((o, ctx) => {
    const bad = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (o.dSae !== undefined && o.expansion !== undefined) bad('dSae', 'give --d-sae or --expansion, not both');
    if (o.steps !== undefined && o.tokens !== undefined) bad('steps', 'give --steps or --tokens, not both');
    const byK = K_ARCH_NAMES.includes(o.arch as ArchName);
    const kArchs = K_ARCH_NAMES.join(' or ');
    if (byK && o.sparsity !== undefined) bad('sparsity', `${o.arch} is controlled by --k, not --sparsity`);
    if (!byK && o.k !== undefined) bad('k', `--k applies only to --arch ${kArchs}, not ${o.arch}`);
    if (byK && o.l0Target !== undefined) bad('l0Target', `${o.arch} sets its L0 with --k; --l0-target is for λ-based architectures`);
    if (!byK && o.deadTokens !== undefined) bad('deadTokens', `--dead-tokens applies only to --arch ${kArchs}`);
    if (o.init !== undefined && o.bDecInit !== 'zero') bad('bDecInit', '--b-dec-init does not apply with --init (its b_dec is kept exactly)');
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
  metrics: MetricsSummary;
  /** The λ of the end of training (the controller's frozen value with --l0-target; else the λ given), null for k. */
  finalSparsity: number | null;
  /** Latents that never fired during the last quarter of training (the metric's "training window"). */
  deadFractionTrainWindow: number;
  interrupted: boolean;
}

export function statePathFor(out: string): string {
  return `${out.replace(/\/+$/, '')}.train-state.safetensors`;
}

/** Trains one SAE. `signal` aborts cleanly (state saved) — the CLI wires it to Ctrl-C. */
export async function trainSae(
  input: TrainOptions,
  hooks: { signal?: AbortSignal; engine?: GemmEngine; source?: ActivationInput } = {},
): Promise<TrainResult> {
  const o = parseTrainOptions(input);
  const arch = getArchitecture(o.arch);
  const engine = hooks.engine ?? (await defaultEngine());
  const data = hooks.source ?? (await openActivations(o.activations));
  try {
    const { train, heldOut } = splitHeldOut(data, o.evalRows);
    const init = o.init ? await loadSae(o.init) : null;
    if (init && init.arch !== arch) throw new Error(`--init ${o.init} holds a ${init.arch.name} SAE but --arch is ${o.arch}`);
    const dSae = init?.cfg.dSae ?? o.dSae ?? Math.round((o.expansion ?? 8) * data.d);
    const totalSteps = o.steps ?? Math.max(1, Math.ceil((o.tokens ?? train.rows) / o.batch));
    const totalTokens = totalSteps * o.batch;
    const recipeSparsity = defaultSparsityFor(arch, { dIn: data.d, dSae, applyBDecToInput: true });
    const sparsity = (arch.sparsityKnob === 'k' ? o.k : o.sparsity) ?? recipeSparsity;

    const cfg: BaseSaeConfig & Record<string, unknown> = arch.configSchema.parse({
      ...(init?.cfg ?? {}),
      dIn: data.d,
      dSae,
      ...(arch.sparsityKnob === 'k' ? { k: sparsity, deadTokensThreshold: o.deadTokens ?? Math.max(o.batch, Math.min(10_000_000, Math.floor(totalTokens / 10))) } : {}),
    });
    if (init && init.cfg.dIn !== data.d) throw new Error(`--init SAE has d_in ${init.cfg.dIn} but the activations have d = ${data.d}`);

    const recipe = recipeOptions(arch, totalSteps, arch.sparsityKnob === 'k' ? 0 : sparsity);
    const optimizerKind = o.optimizer ?? recipe.optimizer.kind;
    const trainerOptions = {
      ...recipe,
      optimizer: OptimizerConfig.parse(
        optimizerKind === 'sgd'
          ? { kind: 'sgd', lr: o.lr ?? recipe.optimizer.lr }
          : { ...recipe.optimizer, lr: o.lr ?? recipe.optimizer.lr },
      ),
      lrSchedule: o.lrSchedule ?? recipe.lrSchedule,
      lrWarmupSteps: Math.min(totalSteps, o.lrWarmup ?? recipe.lrWarmupSteps),
      sparsityWarmupSteps: o.sparsityWarmup ?? recipe.sparsityWarmupSteps,
      gradClip: o.gradClip ?? recipe.gradClip,
    };
    // --init folders hold raw-space (folded) weights: keep them exact by training without normalisation.
    const normalize = init ? 'none' : o.normalize;
    const runConfig = { code: CODE_VERSION, arch: arch.name, cfg, trainer: trainerOptions, batch: o.batch, seed: o.seed, normalize, bDecInit: o.bDecInit, data: data.fingerprint, init: init ? o.init : null, bufferRows: o.bufferRows, evalRows: heldOut.rows, ...(o.l0Target !== undefined ? { l0Target: o.l0Target } : {}) };
    const configHash = hashOf(runConfig);

    // Normalisation scale C (E‖x/C‖² = 1), estimated on a sample of training rows.
    const needSample = normalize === 'auto' || o.bDecInit === 'geometric-median';
    const sample = needSample ? await sampleRows(train, Math.min(train.rows, 16_384), o.seed + 1) : null;
    const normScale = normalize === 'auto' ? estimateNormScale(sample!) : 1;

    const params = init ? init.params : arch.init(cfg, new Rng(o.seed));
    if (o.bDecInit === 'geometric-median' && !init) {
      // b_dec lives in the normalised space the SAE trains in (folded back by C at export).
      const { median } = geometricMedian(normScale === 1 ? sample! : scaleRows(sample!, 1 / normScale));
      params.b_dec!.data.set(median);
    }
    const trainer = new SaeTrainer(arch, cfg, params, trainerOptions, { engine });
    if (o.l0Target !== undefined) {
      trainer.l0Controller = new L0Controller(defaultL0ControllerOptions(o.l0Target, Math.max(sparsity, 1e-8), totalSteps, trainerOptions.sparsityWarmupSteps));
    }
    let resumeFrom: StreamPosition | undefined;
    const statePath = statePathFor(o.out);
    if (await exists(statePath)) {
      const state = await loadTrainingState(statePath);
      if (state.json.configHash !== configHash) {
        throw new Error(`${statePath} holds a training state for a different configuration; delete it to start over, or use another --out`);
      }
      for (const [k, t] of Object.entries(state.params)) params[k]!.data.set(t.data);
      trainer.optimizer.setState(state.optimizer);
      trainer.importState(state.json.trainer as Record<string, unknown>);
      resumeFrom = state.json.stream as StreamPosition;
      if (!o.quiet) process.stderr.write(`resuming from ${statePath} at step ${trainer.step}/${totalSteps}\n`);
    }
    const stream = new ShuffledBatchStream(train, { batchSize: o.batch, seed: o.seed, bufferRows: o.bufferRows, resumeFrom });
    const saveState = () =>
      saveTrainingState(statePath, {
        step: trainer.step,
        params,
        optimizer: trainer.optimizer.getState(),
        json: { configHash, trainer: trainer.exportState(), stream: stream.getPosition() },
      });

    const bar = o.quiet
      ? null
      : new cliProgress.SingleBar(
          {
            format: `${arch.name} {bar} {value}/{total} steps | loss {loss} | L0 {l0} | FVU {fvu} | {tps} tok/s | ETA {eta_formatted}`,
            stream: process.stderr,
            noTTYOutput: true,
            notTTYSchedule: 5000,
            etaBuffer: 20,
          },
          cliProgress.Presets.shades_classic,
        );
    bar?.start(totalSteps, trainer.step, { loss: '-', l0: '-', fvu: '-', tps: '-' });
    const t0 = performance.now();
    const startStep = trainer.step;
    let interrupted = false;
    // The training window of the dead-fraction metric: the last quarter of the steps.
    const windowStart = Math.floor(0.75 * totalSteps);
    while (trainer.step < totalSteps) {
      if (hooks.signal?.aborted) {
        interrupted = true;
        break;
      }
      if (trainer.step === windowStart) trainer.resetFiringWindow();
      const x = await stream.next();
      if (normScale !== 1) scaleRows(x, 1 / normScale, x);
      const s = await trainer.trainStep(x);
      const seconds = (performance.now() - t0) / 1000;
      bar?.update(trainer.step, {
        loss: s.loss.toPrecision(4),
        l0: s.l0.toFixed(1),
        fvu: s.fvu.toFixed(3),
        tps: Math.round(((trainer.step - startStep) * o.batch) / seconds),
      });
      if (trainer.step % o.checkpointEvery === 0 && trainer.step < totalSteps) await saveState();
    }
    bar?.stop();
    const seconds = (performance.now() - t0) / 1000;
    if (interrupted) {
      await saveState();
      process.stderr.write(`interrupted at step ${trainer.step}/${totalSteps}; state saved to ${statePath} — run the same command to resume\n`);
    }

    const folded = foldInputScale(params, normScale);
    const metrics = await evaluateSae({ arch, cfg, params: folded }, heldOut, { engine });
    const tokensPerSecond = ((trainer.step - startStep) * o.batch) / Math.max(seconds, 1e-9);
    const deadFractionTrainWindow = trainer.deadFractionInWindow();
    if (!interrupted) {
      await saveSae(o.out, arch, cfg, folded, {
        hookName: o.hookName ?? data.site,
        modelName: o.modelName ?? data.source,
        provenance: {
          config: runConfig,
          config_hash: configHash,
          data_fingerprint: data.fingerprint,
          data: data.description,
          seed: o.seed,
          norm_scale: normScale,
          steps: trainer.step,
          tokens: trainer.step * o.batch,
          train_seconds: seconds,
          tokens_per_second: tokensPerSecond,
          metrics: metricsJson(metrics),
          dead_fraction_training_window: { value: deadFractionTrainWindow, steps: [trainer.firingWindowStart, trainer.step] },
          ...(trainer.l0Controller ? { l0_controller: { target: o.l0Target, initial_lambda: trainer.l0Controller.options.initialLambda, final_lambda: trainer.l0Controller.lambda() } } : {}),
        },
      });
      await rm(statePath, { force: true });
    }
    const finalSparsity = arch.sparsityKnob === 'k' ? null : (trainer.l0Controller?.lambda() ?? sparsity);
    return { out: o.out, steps: trainer.step, tokens: trainer.step * o.batch, seconds, tokensPerSecond, normScale, metrics, finalSparsity, deadFractionTrainWindow, interrupted };
  } finally {
    if (!hooks.source) await data.close();
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
