/**
 * Sweep configuration: one zod-validated object (a preset, a JSON/TS file, then command-line overrides), the grid
 * of points it expands to, and the cache keys that make each point skippable and resumable.
 *
 * A point is one SAE: (architecture, sparsity setting, seed, expansion). The sparsity setting is either a shared
 * L0 target (λ-based architectures are calibrated to it, TopK uses k = target) or an explicit λ / k.
 */
import { sweepInterpSchema } from '../interp/sweep-config.js';
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import type { ArchName } from '@saelab/core';
import { ARCH_NAMES, getArchitecture } from '../registry.js';
import { hashOf } from '../hash.js';

const archEnum = z.enum(ARCH_NAMES as [ArchName, ...ArchName[]]);

/** Training settings of one SAE; `archs.<name>` overrides them per architecture. */
const trainingSchema = z
  .object({
    /** Training activations per point (steps = ceil(tokens / batch)). */
    tokens: z.number().int().positive(),
    batch: z.number().int().positive(),
    /** Learning rate; default: the architecture's paper recipe (tuned for 10⁸–10⁹ tokens: too low for short runs). */
    lr: z.number().positive().optional(),
    lrWarmup: z.number().int().nonnegative().optional(),
    sparsityWarmup: z.number().int().nonnegative().optional(),
    lrSchedule: z.enum(['constant', 'cosine', 'linear-decay']).optional(),
    gradClip: z.number().nonnegative().optional(),
    /** b_dec at init: zero (default) or the geometric median of a training sample (Gao et al. 2024). */
    bDecInit: z.enum(['zero', 'geometric-median']).optional(),
    /** LR warm-up as a fraction of the point's steps (used when `lrWarmup`, in steps, is not given). */
    lrWarmupFraction: z.number().min(0).max(1).optional(),
    /** λ warm-up as a fraction of the point's steps (used when `sparsityWarmup`, in steps, is not given). */
    sparsityWarmupFraction: z.number().min(0).max(1).optional(),
    /** Adam β1 (default: the recipe's). */
    beta1: z.number().min(0).lt(1).optional(),
    /** Dead-latent resampling: default the recipe's (ReLU, Gated); false = off, true = on (train-run.ts). */
    resample: z.boolean().optional(),
    /** Fields of the architecture's config (e.g. JumpReLU's `bandwidth`), as the tuning stage sets them. */
    archConfig: z.record(z.string(), z.union([z.number(), z.boolean(), z.string()])).optional(),
  })
  .strict();

const archOverrideSchema = trainingSchema.partial().strict();

/** The default source's Longhorn LM (built once, cached by a hash of these settings). */
export const lmBuildSchema = z
  .object({
    vocabSize: z.number().int().min(16),
    dModel: z.number().int().positive(),
    nLayers: z.number().int().positive(),
    dState: z.number().int().positive().default(16),
    contextLength: z.number().int().min(8),
    batch: z.number().int().positive(),
    steps: z.number().int().positive(),
    lr: z.number().positive(),
    warmupSteps: z.number().int().nonnegative().default(20),
    seed: z.number().int().nonnegative().default(0),
    /** Text characters per split to tokenise (caps the cost of tokenising the corpora for small presets). */
    maxChars: z.number().int().positive().optional(),
  })
  .strict();
export type LmBuildConfig = z.output<typeof lmBuildSchema>;

const TUNING_DEFAULTS = { lrs: [3e-4, 1e-3, 3e-3, 1e-2], beta1s: [0, 0.9], validationRows: 16_384, validationFraction: 0.05, seed: 0, maxDead: 0.5, extendEdges: 2, budgetCheck: 0 };
const tuningSchema = z
  .object({
    /** Learning rates tried. */
    lrs: z.array(z.number().positive()).min(1).default(TUNING_DEFAULTS.lrs),
    /** Adam β1 values tried in 'full' mode. */
    beta1s: z.array(z.number().min(0).lt(1)).min(1).default(TUNING_DEFAULTS.beta1s),
    /** The L0 target tuned at; default: the middle of `grid.l0Targets` (the lower middle for an even count). */
    target: z.number().int().positive().optional(),
    /** Validation rows: the last min(validationRows, validationFraction · train rows) training rows, never trained on by the tuning runs. */
    validationRows: z.number().int().positive().default(TUNING_DEFAULTS.validationRows),
    validationFraction: z.number().gt(0).lt(1).default(TUNING_DEFAULTS.validationFraction),
    seed: z.number().int().nonnegative().default(TUNING_DEFAULTS.seed),
    /**
     * Settings whose dead fraction over the last training window reaches this are not chosen while another one is
     * below it. Default 0.5: a setting that leaves half the dictionary dead is broken, not "at its best". The
     * report's 10% bar is not used here: on the default data the lrs that fit best leave 10–25% of ReLU's, Gated's
     * and TopK's latents dead while JumpReLU's pre-activation loss keeps its window count near 0 (its latents fire
     * rarely, not usefully: 40% never fire on the evaluation rows), so a 10% rule would rank the remedies, not the
     * architectures (docs/sweep.md, "The tuning stage").
     */
    maxDead: z.number().gt(0).max(1).default(TUNING_DEFAULTS.maxDead),
    /** When the chosen lr is the grid's largest or smallest, try up to this many more lrs beyond it (same ratio). */
    extendEdges: z.number().int().nonnegative().default(TUNING_DEFAULTS.extendEdges),
    /** Train the chosen setting again with this many times the budget and report the validation change (0 = off). */
    budgetCheck: z.number().nonnegative().default(TUNING_DEFAULTS.budgetCheck),
  })
  .strict();

export const sweepConfigSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'a plain name (letters, digits, . _ -)'),
    /** `default` (the project's Longhorn LM on the npm corpora), `llama2c:PATH`, or `longhorn:DIR`. */
    source: z.string().min(1).default('default'),
    /** Pre-harvested activations instead of an LM: an activation-store folder or an [N, d] `.npy`/safetensors file. */
    activations: z.string().min(1).optional(),
    /** Hook site; default: the residual stream after the middle layer. */
    site: z.string().min(1).optional(),
    /** Settings of the default source's LM (required when source is 'default' and no activations are given). */
    lm: lmBuildSchema.optional(),
    data: z
      .object({
        corpus: z.string().default('sotu+brown'),
        contextLength: z.number().int().min(2),
        /** Training activations harvested from the train split. */
        trainTokens: z.number().int().positive(),
        /** Held-out tokens (validation split) for every metric, including ΔLM loss. */
        evalTokens: z.number().int().positive(),
        /** Windows per LM forward pass. */
        batch: z.number().int().positive().default(16),
        seed: z.number().int().nonnegative().default(0),
      })
      .strict(),
    grid: z
      .object({
        architectures: z.array(archEnum).min(1),
        /** Shared L0 targets: k-based architectures use k = target, λ-based ones are calibrated to land near it. */
        l0Targets: z.array(z.number().int().positive()).default([]),
        /** Explicit sparsity values per architecture (λ, or k for the k-based ones), run without calibration. */
        sparsity: z.partialRecord(archEnum, z.array(z.number().positive())).default({}),
        seeds: z.array(z.number().int().nonnegative()).min(1).default([0]),
        /** Dictionary size as a multiple of d_in. */
        expansions: z.array(z.number().positive()).min(1).default([8]),
      })
      .strict(),
    training: trainingSchema,
    /** Per-architecture overrides of `training` (changing one reruns only that architecture's points). */
    archs: z.partialRecord(archEnum, archOverrideSchema).default({}),
    calibration: z
      .object({
        /** Length of a calibration run as a fraction of the point's training steps. */
        stepsFraction: z.number().gt(0).max(1).default(0.3),
        minSteps: z.number().int().positive().default(20),
        maxIters: z.number().int().positive().default(8),
        /** Accept when |L0 / target − 1| ≤ tolerance. */
        tolerance: z.number().positive().default(0.15),
        /** Full-length correction runs when the final L0 still misses the target by more than the tolerance. */
        refineRuns: z.number().int().nonnegative().default(1),
        seed: z.number().int().nonnegative().default(0),
        /**
         * How λ-based architectures reach an L0 target: 'probe' (short calibration runs, then the full run;
         * calibrate.ts) or 'controller' (one run whose λ a controller steers to the target, to the end or frozen
         * after `controllerFreeze`; core sae/l0-controller.ts). docs/l0-targeting.md compares them.
         */
        method: z.enum(['probe', 'controller']).default('probe'),
        /** 'controller': the fraction of the steps after which λ is held fixed (default 1: it acts to the end). */
        controllerFreeze: z.number().gt(0).max(1).default(1),
      })
      .strict()
      .default({ stepsFraction: 0.3, minSteps: 20, maxIters: 8, tolerance: 0.15, refineRuns: 1, seed: 0, method: 'probe', controllerFreeze: 1 }),
    eval: z.object({ batch: z.number().int().positive().default(4096) }).strict().default({ batch: 4096 }),
    /**
     * The tuning stage (tune.ts): before the grid, per architecture, train at one L0 target over a grid of learning
     * rates ('lr'), or of learning rates × Adam β1 × the knobs the architecture declares ('full'), at the full point
     * budget; select on validation rows disjoint from the reported ones; every point then uses the choice.
     */
    tune: z.enum(['off', 'lr', 'full']).default('off'),
    tuning: tuningSchema.default(TUNING_DEFAULTS),
    /** Sparse probing and latent dashboards after the points (with an LM; docs/interpretability.md). Not in point hashes. */
    interp: sweepInterpSchema.prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    const n = c.grid.l0Targets.length + Object.values(c.grid.sparsity).reduce((a, v) => a + (v?.length ?? 0), 0);
    if (n === 0) ctx.addIssue({ code: 'custom', path: ['grid', 'l0Targets'], message: 'the grid is empty: give l0Targets or explicit sparsity values' });
    for (const a of Object.keys(c.grid.sparsity)) {
      if (!c.grid.architectures.includes(a as ArchName)) ctx.addIssue({ code: 'custom', path: ['grid', 'sparsity', a], message: `'${a}' is not in grid.architectures` });
    }
    for (const [a, values] of Object.entries(c.grid.sparsity)) {
      const knob = getArchitecture(a).sparsity;
      for (const v of values ?? []) {
        if (knob.integer && !Number.isInteger(v)) ctx.addIssue({ code: 'custom', path: ['grid', 'sparsity', a], message: `${knob.name} must be an integer, got ${v}` });
      }
    }
    if (c.tune !== 'off' && c.tuning.target === undefined && c.grid.l0Targets.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['tuning', 'target'], message: 'the tuning stage needs an L0 target: give grid.l0Targets or tuning.target' });
    }
    if (c.source === 'default' && !c.activations && !c.lm) {
      ctx.addIssue({ code: 'custom', path: ['lm'], message: "the default source trains its own LM: give its settings under 'lm' (see the presets)" });
    }
    if (c.source !== 'default' && !/^(llama2c|longhorn):.+/.test(c.source)) {
      ctx.addIssue({ code: 'custom', path: ['source'], message: `expected default, llama2c:PATH or longhorn:DIR, got '${c.source}'` });
    }
  });
export type SweepConfig = z.output<typeof sweepConfigSchema>;
export type SweepConfigInput = z.input<typeof sweepConfigSchema>;

/** Parses a config with every problem listed by its path. */
export function parseSweepConfig(input: unknown, where = 'sweep config'): SweepConfig {
  const r = sweepConfigSchema.safeParse(input);
  if (!r.success) throw new Error(`invalid ${where}:\n${r.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n')}`);
  return r.data;
}

export const PRESETS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../sweep-presets');

export async function presetNames(): Promise<string[]> {
  return (await readdir(PRESETS_DIR)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
}

export async function loadPreset(name: string): Promise<Record<string, unknown>> {
  const names = await presetNames();
  if (!names.includes(name)) throw new Error(`unknown preset '${name}' (have ${names.join(', ')})`);
  return JSON.parse(await readFile(join(PRESETS_DIR, `${name}.json`), 'utf8'));
}

/** A config file: JSON, or a TS/JS module whose default export is the config object. */
export async function loadConfigFile(path: string): Promise<Record<string, unknown>> {
  if (/\.[cm]?[jt]s$/.test(path)) {
    const mod = (await import(pathToFileURL(resolve(path)).href)) as { default?: unknown };
    if (!mod.default || typeof mod.default !== 'object') throw new Error(`${path}: the default export must be a sweep config object`);
    return mod.default as Record<string, unknown>;
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: cannot read the sweep config (${(e as Error).message})`);
  }
}

/** Deep merge of plain objects (arrays and scalars in `over` replace). */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] = isPlain(v) && isPlain(b) ? deepMerge(b, v) : v;
  }
  return out;
}
const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `a.b.c=value` (value parsed as JSON when it parses, else a string) → { a: { b: { c: value } } }. */
export function parseSetOverride(expr: string): Record<string, unknown> {
  const eq = expr.indexOf('=');
  if (eq <= 0) throw new Error(`--set '${expr}': expected path.to.key=value`);
  const path = expr.slice(0, eq).split('.');
  const raw = expr.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    value = raw;
  }
  return path.reduceRight<Record<string, unknown>>((acc, key, i) => (i === path.length - 1 ? { [key]: value } : { [key]: acc }), {} as Record<string, unknown>) as Record<string, unknown>;
}

/** Command-line flags that override the config. */
export interface SweepFlags {
  preset?: string;
  config?: string;
  source?: string;
  activations?: string;
  site?: string;
  archs?: string[];
  l0?: number[];
  seeds?: number[];
  expansions?: number[];
  tokens?: number;
  set?: string[];
}

/** preset (default: 'default') ← config file ← flags, validated once. */
export async function resolveSweepConfig(flags: SweepFlags): Promise<SweepConfig> {
  let cfg: Record<string, unknown> = flags.config ? {} : await loadPreset(flags.preset ?? 'default');
  if (flags.config) {
    const file = await loadConfigFile(flags.config);
    cfg = flags.preset ? deepMerge(await loadPreset(flags.preset), file) : file;
  }
  const over: Record<string, unknown> = {
    source: flags.source,
    activations: flags.activations,
    site: flags.site,
    grid: stripUndefined({ architectures: flags.archs, l0Targets: flags.l0, seeds: flags.seeds, expansions: flags.expansions }),
    training: stripUndefined({ tokens: flags.tokens }),
  };
  cfg = deepMerge(cfg, over);
  for (const s of flags.set ?? []) cfg = deepMerge(cfg, parseSetOverride(s));
  return parseSweepConfig(cfg, flags.config ?? `preset '${flags.preset ?? 'default'}'`);
}
const stripUndefined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

// ---------------------------------------------------------------------------------------------------------------
// Points

export interface PointSpec {
  /** Stable, human-readable id, e.g. `relu-l0_16-x8-s0`. */
  id: string;
  arch: ArchName;
  /** L0 target (calibrated), or null for an explicit sparsity value. */
  target: number | null;
  /** Explicit λ (or k for topk) when target is null. */
  sparsity: number | null;
  seed: number;
  expansion: number;
}

/** Every point of the grid, ordered by architecture, then expansion, then sparsity, then seed (calibration reuse). */
export function expandGrid(c: SweepConfig): PointSpec[] {
  const out: PointSpec[] = [];
  for (const arch of c.grid.architectures) {
    for (const expansion of c.grid.expansions) {
      const settings: { target: number | null; sparsity: number | null }[] = [
        ...[...c.grid.l0Targets].sort((a, b) => a - b).map((t) => ({ target: t, sparsity: null })),
        ...(c.grid.sparsity[arch] ?? []).map((s) => ({ target: null, sparsity: s })),
      ];
      for (const s of settings) {
        for (const seed of c.grid.seeds) {
          const knob = s.target !== null ? `l0_${s.target}` : `${getArchitecture(arch).sparsity.short}_${s.sparsity}`;
          out.push({ id: `${arch}-${knob}-x${expansion}-s${seed}`, arch, ...s, seed, expansion });
        }
      }
    }
  }
  const ids = new Set(out.map((p) => p.id));
  if (ids.size !== out.length) throw new Error('the grid has duplicate points (repeated values in a grid list?)');
  return out;
}

/** Training settings of one architecture: `training` with `archs.<arch>` applied. */
export function trainingFor(c: SweepConfig, arch: ArchName): z.output<typeof trainingSchema> {
  return { ...c.training, ...stripUndefined((c.archs[arch] ?? {}) as Record<string, unknown>) } as z.output<typeof trainingSchema>;
}

/**
 * What determines a point's result: its spec, its architecture's training settings, the calibration settings
 * (λ-based archs with a target), the data fingerprint and the code version. Nothing about other architectures.
 */
export function pointKey(c: SweepConfig, p: PointSpec, dataFingerprint: string, codeVersion: string): Record<string, unknown> {
  const calibrated = p.target !== null && getArchitecture(p.arch).sparsity.forL0Target(p.target) === null;
  return {
    point: { arch: p.arch, target: p.target, sparsity: p.sparsity, seed: p.seed, expansion: p.expansion },
    training: trainingFor(c, p.arch),
    calibration: calibrated ? c.calibration : null,
    evalBatch: c.eval.batch,
    data: dataFingerprint,
    code: codeVersion,
  };
}

export const pointHash = (c: SweepConfig, p: PointSpec, dataFingerprint: string, codeVersion: string) => hashOf(pointKey(c, p, dataFingerprint, codeVersion));
