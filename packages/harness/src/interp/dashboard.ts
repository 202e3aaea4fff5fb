/**
 * `saelab dashboard`: one pass of an LM + SAE over N tokens of a corpus split (latent-stats.ts), then an offline
 * folder (dashboard-html.ts): index.html (sortable, searchable table of all latents, density histogram) and one page
 * per chosen latent (top and quantile-sampled contexts, activation histogram, logit effects, nearest latents).
 *
 * Interruption: the harvest runs in memory and the folder is written to `<out>.partial` and renamed into place at the
 * end, so an interrupted run never leaves a half-written dashboard; the next run removes the stale `.partial` and
 * starts over (restart, not resume: a 100k-token harvest takes seconds to a few minutes here).
 */
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import { type TextTokenizer, documentWindows, loadCorpora, tagBrownDocument } from '@saelab/activations';
import { type GemmEngine, type HookableLM, defaultEngine } from '@saelab/core';
import { z } from 'zod';
import { openLanguageModel } from '../lm-sources.js';
import { type LoadedSae, loadSae } from '../sae-folder.js';
import { writeDashboardFolder } from './dashboard-html.js';
import { LatentStats, type LatentStatsOptions } from './latent-stats.js';
import { saeEncoder, saeHookName } from './probe.js';

export const DashboardOptionsSchema = z.object({
  sae: z.string().min(1),
  lm: z.string().min(1),
  out: z.string().min(1),
  /** Brown first: its POS labels feed the POS-purity score. */
  corpus: z.string().default('brown+sotu'),
  split: z.enum(['train', 'validation', 'test']).default('validation'),
  tokens: z.number().int().positive().default(100_000),
  /** Latents that get a page: 'all' or how many (a seeded uniform sample of the latents that fired). */
  latents: z.union([z.literal('all'), z.number().int().nonnegative()]).default(200),
  site: z.string().optional(),
  context: z.number().int().min(2).default(128),
  batch: z.number().int().positive().default(16),
  topK: z.number().int().positive().default(20),
  seed: z.number().int().default(0),
  quiet: z.boolean().default(false),
});
export type DashboardOptions = z.input<typeof DashboardOptionsSchema>;

export interface HarvestProgressInfo {
  tokens: number;
  target: number;
  elapsedSeconds: number;
}

/** Window bookkeeping for rendering: the document each window came from. */
export interface HarvestedLatents {
  stats: LatentStats;
  windowDocs: string[];
  seconds: number;
}

/**
 * Streams `tokens` tokens of `corpus`/`split` through the LM and the SAE, batch by batch, into LatentStats.
 * Brown documents carry POS labels (pos.ts) for the POS-concentration score.
 */
export async function harvestLatents(
  lm: HookableLM,
  tokenizer: TextTokenizer,
  site: string,
  sae: Pick<LoadedSae, 'arch' | 'cfg' | 'params'>,
  o: { corpus: string; split: 'train' | 'validation' | 'test'; tokens: number; context: number; batch: number; engine?: GemmEngine; stats?: LatentStatsOptions; signal?: AbortSignal },
  onProgress?: (p: HarvestProgressInfo) => void,
): Promise<HarvestedLatents> {
  const T = Math.min(o.context, lm.info.maxSeqLen);
  if (lm.siteDim(site) !== sae.cfg.dIn) throw new Error(`the LM's ${site} has d = ${lm.siteDim(site)} but the SAE's d_in is ${sae.cfg.dIn}`);
  const engine = o.engine ?? (await defaultEngine());
  const encode = saeEncoder(sae, engine);
  const stats = new LatentStats(sae.cfg.dSae, o.stats);
  const windowDocs: string[] = [];
  const t0 = performance.now();
  const lead = tokenizer.bos === null ? 0 : 1;
  type Win = { doc: string; tokens: number[]; pos: number[] };
  let pending: Win[] = [];
  let seen = 0;
  const flush = async () => {
    if (pending.length === 0) return;
    const B = pending.length;
    const ids = new Int32Array(B * T).fill(tokenizer.bos ?? 0);
    const pos = new Int8Array(B * T).fill(-1);
    const valid = new Uint8Array(B * T);
    const real = new Uint8Array(B * T);
    let budget = o.tokens - seen;
    pending.forEach((w, b) => {
      ids.set(w.tokens, b * T);
      for (let t = lead; t < w.tokens.length; t++) {
        real[b * T + t] = 1;
        pos[b * T + t] = w.pos[t]!;
        if (budget > 0) {
          valid[b * T + t] = 1;
          budget--;
        }
      }
    });
    const { acts } = await lm.run(ids, B, T, { read: [site], skipLogits: true });
    const f = await encode(acts[site]!);
    stats.observe({ latents: f.data, rows: B * T, tokens: ids, pos, valid, real, seqLen: T, firstWindow: windowDocs.length });
    for (const w of pending) windowDocs.push(w.doc);
    seen = stats.tokensSeen;
    pending = [];
    onProgress?.({ tokens: seen, target: o.tokens, elapsedSeconds: (performance.now() - t0) / 1000 });
  };
  outer: for (const doc of loadCorpora(o.corpus, o.split)) {
    const tagged = doc.corpus === 'brown' ? tagBrownDocument(doc.id, tokenizer) : null;
    const tokens = tagged?.tokens ?? tokenizer.encode(doc.text);
    const labels = tagged?.labels;
    let start = 0;
    for (const w of documentWindows(tokens, T, tokenizer.bos)) {
      const body = w.length - lead;
      const pos = new Array<number>(w.length).fill(-1);
      if (labels) for (let t = 0; t < body; t++) pos[t + lead] = labels[start + t]!;
      start += body;
      pending.push({ doc: `${doc.corpus}/${doc.id}`, tokens: w, pos });
      if (pending.length >= o.batch) {
        await flush();
        if (seen >= o.tokens || o.signal?.aborted) break outer;
      }
    }
  }
  if (seen < o.tokens && !o.signal?.aborted) await flush();
  if (o.signal?.aborted) throw new Error('dashboard: interrupted (nothing written; run again to start over)');
  if (stats.tokensSeen < o.tokens) process.emitWarning(`dashboard: the ${o.corpus} ${o.split} split ran out after ${stats.tokensSeen} tokens (asked for ${o.tokens})`);
  return { stats, windowDocs, seconds: (performance.now() - t0) / 1000 };
}

/** The latents that get a page: all, or a seeded uniform sample of `n` latents that fired, in id order. */
export function chooseLatentPages(stats: LatentStats, latents: 'all' | number, seed: number): number[] {
  const alive = Array.from({ length: stats.m }, (_, j) => j).filter((j) => stats.count[j]! > 0);
  if (latents === 'all' || latents >= alive.length) return latents === 'all' ? Array.from({ length: stats.m }, (_, j) => j) : alive;
  // Partial Fisher–Yates with a seeded LCG (deterministic, independent of the harvest's RNG).
  let s = (seed * 2654435761 + 1) >>> 0;
  const a = [...alive];
  for (let i = 0; i < latents; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const k = i + (s % (a.length - i));
    [a[i], a[k]] = [a[k]!, a[i]!];
  }
  return a.slice(0, latents).sort((x, y) => x - y);
}

/** Runs the whole command: harvest, then write the folder atomically. */
export async function runDashboard(opts: DashboardOptions, hooks: { signal?: AbortSignal; log?: (s: string) => void; lm?: { lm: HookableLM; tokenizer: TextTokenizer } } = {}) {
  const o = DashboardOptionsSchema.parse(opts);
  const sae = await loadSae(o.sae);
  const site = o.site ?? saeHookName(sae);
  if (!site) throw new Error('dashboard needs --site: the SAE folder names no hook_name');
  const { lm, tokenizer } = hooks.lm ?? (await openLanguageModel(o.lm));
  if (!lm.sites().includes(site)) throw new Error(`the LM has no site '${site}'`);
  const partial = `${o.out}.partial`;
  await rm(partial, { recursive: true, force: true }); // a stale partial folder from an interrupted run
  const bar = o.quiet
    ? null
    : new cliProgress.SingleBar(
        { format: 'dashboard {bar} {value}/{total} tokens | {tps} tok/s | ETA {eta_formatted}', stream: process.stderr, noTTYOutput: true, notTTYSchedule: 5000, etaBuffer: 20 },
        cliProgress.Presets.shades_classic,
      );
  bar?.start(o.tokens, 0, { tps: '-' });
  let h: HarvestedLatents;
  try {
    h = await harvestLatents(lm, tokenizer, site, sae, { ...o, signal: hooks.signal, stats: { topK: o.topK, seed: o.seed } }, (p) =>
      bar?.update(Math.min(p.tokens, o.tokens), { tps: Math.round(p.tokens / Math.max(1e-9, p.elapsedSeconds)) }),
    );
  } finally {
    bar?.stop();
  }
  const pages = chooseLatentPages(h.stats, o.latents, o.seed);
  const unembedding = lmUnembedding(lm);
  await writeDashboardFolder(partial, {
    stats: h.stats,
    sae,
    tokenizer,
    unembedding,
    pages,
    windowDocs: h.windowDocs,
    meta: { sae: o.sae, lm: o.lm, site, corpus: o.corpus, split: o.split, tokens: h.stats.tokensSeen, seconds: h.seconds, created: new Date().toISOString() },
  });
  if (existsSync(o.out)) await rm(o.out, { recursive: true, force: true });
  await rename(partial, o.out);
  hooks.log?.(`wrote ${o.out}/index.html: ${h.stats.m} latents over ${h.stats.tokensSeen} tokens, ${pages.length} latent pages (${h.seconds.toFixed(1)} s harvest)`);
  return { out: o.out, pages: pages.length, tokens: h.stats.tokensSeen, seconds: h.seconds, stateBytes: h.stats.stateBytes() };
}

/** The LM's final norm gain and unembedding, when the model exposes them (llama2.c, Longhorn); ONNX models do not. */
export interface Unembedding {
  gain: Float32Array | null;
  /** [vocab, d] */
  weight: Float32Array;
  vocab: number;
  d: number;
}

export function lmUnembedding(lm: HookableLM): Unembedding | null {
  const f = (lm as unknown as { unembedding?: () => Unembedding }).unembedding;
  return typeof f === 'function' ? f.call(lm) : null;
}
