/**
 * `saelab probe`: k-sparse probing of one SAE's latents against the raw activations at its site, on the tasks of
 * probe-data.ts (docs/interpretability.md).
 */
import type { TextTokenizer } from '@saelab/activations';
import { type GemmEngine, type HookableLM, type Tensor, defaultEngine } from '@saelab/core';
import { z } from 'zod';
import { openLanguageModel } from '../lm-sources.js';
import { type LoadedSae, loadSae } from '../sae-folder.js';
import { PROBE_TASKS, type ProbeData, type ProbeDataOptions, type ProbeTaskName, ProbeTaskSchema, buildProbeData, probeFeatures } from './probe-data.js';
import { DEFAULT_PROBE_KS, type TaskProbeResult, probeTask } from './sparse-probe.js';

export const ProbeCliSchema = z.object({
  sae: z.string().min(1),
  lm: z.string().min(1),
  task: z.union([z.literal('all'), ProbeTaskSchema]).default('all'),
  k: z.array(z.number().int().positive()).min(1).default([...DEFAULT_PROBE_KS]),
  site: z.string().optional(),
  context: z.number().int().min(2).default(128),
  seed: z.number().int().default(0),
});
export type ProbeCliOptions = z.input<typeof ProbeCliSchema>;

export interface TaskReport {
  task: ProbeTaskName;
  level: 'token' | 'document';
  documents: number;
  examples: number;
  sae: TaskProbeResult;
  /** The same probes on the raw site activations (top-k dims by the same rule, and all d dims). */
  raw: TaskProbeResult;
}

/**
 * The hook site an SAE folder names: SAELens ≥ 6 under `metadata.hook_name`, older configs at the top level as
 * `hook_name`, or as `hook_point` in the oldest (the pre-6.0 cfg.json files that core's loadSae also reads; see
 * the pre-6.0 cases in test/saelens-interop.test.ts).
 */
export function saeHookName(sae: Pick<LoadedSae, 'json'>): string | undefined {
  const meta = (sae.json.metadata ?? {}) as Record<string, unknown>;
  return [meta.hook_name, sae.json.hook_name, sae.json.hook_point].find((h): h is string => typeof h === 'string');
}

/** An SAE's encoder as a row encoder. */
export function saeEncoder(sae: Pick<LoadedSae, 'arch' | 'cfg' | 'params'>, engine: GemmEngine) {
  return (x: Tensor) => sae.arch.encode(sae.params, x, sae.cfg, { engine });
}

/** Probes one SAE on prepared data; `raw` results can be passed in to reuse them across SAEs (the sweep does). */
export async function probeSaeOnData(
  sae: Pick<LoadedSae, 'arch' | 'cfg' | 'params'>,
  data: ProbeData,
  o: { ks?: readonly number[]; seed?: number; engine?: GemmEngine; raw?: TaskProbeResult },
): Promise<TaskReport> {
  if (sae.cfg.dIn !== data.d) throw new Error(`the SAE's d_in is ${sae.cfg.dIn} but the probing activations have d = ${data.d}`);
  const engine = o.engine ?? (await defaultEngine());
  const probeOpts = { ks: o.ks, seed: o.seed };
  const raw = o.raw ?? probeTask(await probeFeatures(data), data.examples, { ...probeOpts, all: true });
  const saeResult = probeTask(await probeFeatures(data, saeEncoder(sae, engine)), data.examples, probeOpts);
  return { task: data.task, level: data.level, documents: data.documents, examples: data.examples.label.length, sae: saeResult, raw };
}

/** Builds the probing data for `tasks` once (LM forward passes), for probing many SAEs. */
export async function buildProbeSuite(lm: HookableLM, tokenizer: TextTokenizer, site: string, tasks: readonly ProbeTaskName[], o: ProbeDataOptions = {}): Promise<ProbeData[]> {
  const out: ProbeData[] = [];
  const documentCache = o.documentCache ?? new Map();
  for (const t of tasks) out.push(await buildProbeData(lm, tokenizer, site, t, { ...o, documentCache }));
  return out;
}

export async function runProbe(opts: ProbeCliOptions, log: (s: string) => void = () => undefined): Promise<{ site: string; sae: string; lm: string; tasks: TaskReport[] }> {
  const o = ProbeCliSchema.parse(opts);
  const sae = await loadSae(o.sae);
  const site = o.site ?? saeHookName(sae);
  if (!site) throw new Error('probe needs --site: the SAE folder names no hook_name');
  const { lm, tokenizer } = await openLanguageModel(o.lm);
  if (!lm.sites().includes(site)) throw new Error(`the LM has no site '${site}' (it has ${lm.sites().slice(0, 6).join(', ')}, …)`);
  if (lm.siteDim(site) !== sae.cfg.dIn) throw new Error(`the LM's ${site} has d = ${lm.siteDim(site)} but the SAE's d_in is ${sae.cfg.dIn}`);
  const engine = await defaultEngine();
  const tasks = o.task === 'all' ? PROBE_TASKS : [o.task];
  const reports: TaskReport[] = [];
  const documentCache = new Map();
  for (const t of tasks) {
    const t0 = performance.now();
    const data = await buildProbeData(lm, tokenizer, site, t, { contextLength: o.context, documentCache });
    reports.push(await probeSaeOnData(sae, data, { ks: o.k, seed: o.seed, engine }));
    log(`probe ${t}: ${data.examples.label.length} examples from ${data.documents} documents in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return { site, sae: o.sae, lm: o.lm, tasks: reports };
}

/** A plain-text table of a probe run. */
export function formatProbeReport(r: Awaited<ReturnType<typeof runProbe>>): string {
  const lines: string[] = [`SAE ${r.sae} on ${r.lm} @ ${r.site}: held-out accuracy of balanced one-vs-rest probes, mean over classes`];
  for (const t of r.tasks) {
    const ks = Object.keys(t.sae.meanAccuracy);
    lines.push('', `${t.task} (${t.level} level, ${t.sae.classes.length} classes, ${t.examples} examples from ${t.documents} documents)`);
    lines.push(`  ${'features'.padEnd(14)}${ks.map((k) => `k=${k}`.padStart(8)).join('')}${'all'.padStart(8)}${'best-1 F1'.padStart(11)}`);
    const row = (name: string, res: typeof t.sae) =>
      `  ${name.padEnd(14)}${ks.map((k) => res.meanAccuracy[k]!.toFixed(3).padStart(8)).join('')}${(res.meanAccuracyAll === undefined ? '-' : res.meanAccuracyAll.toFixed(3)).padStart(8)}${res.meanBestF1.toFixed(3).padStart(11)}`;
    lines.push(row('SAE latents', t.sae), row('raw dims', t.raw));
  }
  return lines.join('\n') + '\n';
}
