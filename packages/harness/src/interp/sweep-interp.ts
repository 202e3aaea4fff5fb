/**
 * Interpretability in every sweep (docs/interpretability.md): after the points are trained and the fidelity outputs
 * written, when the sweep has an LM,
 *  - k-sparse probing of every point's SAE on the probing tasks (the LM's probing activations are computed once;
 *    the raw-activation baselines once; each point's numbers are cached beside its SAE in the point cache, keyed by
 *    the probing settings, so a re-run costs nothing) → `probe` on each point of frontier.json and an
 *    `interpretability` block (baselines, frontiers of probing error vs L0, dashboards, seconds);
 *  - one dashboard per architecture, for its point nearest `dashboardL0` in log L0 → `dashboards/<point id>/`;
 *  - an "Interpretability" section in report.html / report.md (plot with seed bands, tables, the plain statement
 *    of whether the fidelity ordering costs interpretability, links to the dashboards).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type GemmEngine, defaultEngine, writeFileAtomic } from '@saelab/core';
import { hashOf } from '../hash.js';
import { loadSae } from '../sae-folder.js';
import type { SweepConfig } from '../sweep/config.js';
import type { SweepData } from '../sweep/dataset.js';
import { type FrontierSummary, summarizeFrontiers } from '../sweep/frontier.js';
import { type PlotPanel, frontierSpec, renderPng, renderSvg } from '../sweep/plot.js';
import type { PointResult } from '../sweep/point.js';
import { seriesInputs } from '../sweep/run.js';
import { writeDashboardFolder } from './dashboard-html.js';
import { chooseLatentPages, harvestLatents, lmUnembedding } from './dashboard.js';
import { probeFeatures } from './probe-data.js';
import { type SweepInterpConfig, sweepInterpSchema } from './sweep-config.js';
import { buildProbeSuite, probeSaeOnData } from './probe.js';
import { probeTask } from './sparse-probe.js';

export { type SweepInterpConfig, sweepInterpSchema } from './sweep-config.js';

/** Bump when the probing or its data change, so cached per-point probe results are recomputed. */
const PROBE_VERSION = 1;

export interface PointProbe {
  /** Per task: mean held-out accuracy over the task's classes by k, and the mean best-single-latent F1. */
  [task: string]: { meanAccuracy: Record<string, number>; meanBestF1: number; classes: number };
}

export interface SweepInterpResult {
  probes: Map<string, PointProbe>;
  baselines: Record<string, { meanAccuracy: Record<string, number>; meanAccuracyAll: number | null; meanBestF1: number }>;
  summaries: FrontierSummary[];
  dashboards: { arch: string; point: string; l0: number; path: string }[];
  seconds: { probeData: number; probes: number; dashboards: number; total: number };
  statement: string;
}

/** Mean over tasks of the k-probe accuracy of one point. */
export const meanProbeAccuracy = (p: PointProbe, k: number) => {
  const v = Object.values(p).map((t) => t.meanAccuracy[String(k)]);
  return v.some((x) => x === undefined) || v.length === 0 ? null : v.reduce((s, x) => s + x!, 0) / v.length;
};

/** The point of each architecture nearest `l0` in log L0 (ties: lower seed, then id). */
export function dashboardPoints(points: PointResult[], l0: number): PointResult[] {
  const byArch = new Map<string, PointResult>();
  const dist = (p: PointResult) => Math.abs(Math.log(p.metrics.l0.mean) - Math.log(l0));
  for (const p of points) {
    if (!(p.metrics.l0.mean > 0)) continue;
    const cur = byArch.get(p.arch);
    if (!cur || dist(p) < dist(cur) || (dist(p) === dist(cur) && (p.seed < cur.seed || (p.seed === cur.seed && p.id < cur.id)))) byArch.set(p.arch, p);
  }
  return [...byArch.values()];
}

export async function sweepInterpretability(ctx: {
  runDir: string;
  config: SweepConfig & { interp?: SweepInterpConfig };
  data: SweepData;
  points: PointResult[];
  cacheDir: string;
  engine?: GemmEngine;
  log: (s: string) => void;
}): Promise<SweepInterpResult | null> {
  const ic = sweepInterpSchema.parse(ctx.config.interp ?? {});
  const lm = ctx.data.lm;
  if (!ic.enabled || !lm || ctx.points.length === 0) return null;
  const t0 = performance.now();
  const engine = ctx.engine ?? (await defaultEngine());
  const T = ctx.config.data.contextLength;
  const dataOpts = { contextLength: T, batchWindows: ctx.config.data.batch, maxPerClass: ic.maxPerClass, posDocTokens: ic.posDocTokens, docTokens: ic.docTokens ?? T - 1 };
  const probeKey = hashOf({ version: PROBE_VERSION, tasks: ic.tasks, ks: ic.ks, dataOpts, lm: ctx.data.fingerprint, site: ctx.data.site });

  // Probing data and baselines only when some point lacks cached probe results.
  const probes = new Map<string, PointProbe>();
  const cacheFile = (p: PointResult) => join(ctx.cacheDir, 'points', `${p.id}-${p.hash}`, `probe-${probeKey}.json`);
  const baselineFile = join(ctx.cacheDir, 'probe-baselines', `${probeKey}.json`);
  for (const p of ctx.points) if (existsSync(cacheFile(p))) probes.set(p.id, JSON.parse(await readFile(cacheFile(p), 'utf8')) as PointProbe);
  let baselines: SweepInterpResult['baselines'] | null = existsSync(baselineFile) ? JSON.parse(await readFile(baselineFile, 'utf8')) : null;
  let probeDataSeconds = 0;
  const tProbes = performance.now();
  if (probes.size < ctx.points.length || !baselines) {
    const td = performance.now();
    const suite = await buildProbeSuite(lm.lm, lm.tokenizer, ctx.data.site, ic.tasks, dataOpts);
    probeDataSeconds = (performance.now() - td) / 1000;
    const raw = new Map(suite.map((d) => [d.task, null as null | ReturnType<typeof probeTask>]));
    for (const p of ctx.points) {
      if (probes.has(p.id)) continue;
      const sae = await loadSae(join(ctx.cacheDir, 'points', `${p.id}-${p.hash}`, 'sae'));
      const out: PointProbe = {};
      for (const d of suite) {
        const r = await probeSaeOnData(sae, d, { ks: ic.ks, engine, raw: raw.get(d.task) ?? undefined });
        raw.set(d.task, r.raw);
        out[d.task] = { meanAccuracy: r.sae.meanAccuracy, meanBestF1: r.sae.meanBestF1, classes: r.sae.classes.length };
      }
      probes.set(p.id, out);
      await writeFileAtomic(cacheFile(p), JSON.stringify(out) + '\n');
    }
    if (!baselines) {
      baselines = {};
      for (const d of suite) {
        const r = raw.get(d.task) ?? probeTask(await probeFeatures(d), d.examples, { ks: ic.ks, all: true });
        baselines[d.task] = { meanAccuracy: r.meanAccuracy, meanAccuracyAll: r.meanAccuracyAll ?? null, meanBestF1: r.meanBestF1 };
      }
      await mkdir(join(ctx.cacheDir, 'probe-baselines'), { recursive: true });
      await writeFileAtomic(baselineFile, JSON.stringify(baselines) + '\n');
    }
  }
  const probeSeconds = (performance.now() - tProbes) / 1000 - probeDataSeconds;
  ctx.log(`interpretability: probed ${ctx.points.length} SAEs on ${ic.tasks.join(', ')} (${probeDataSeconds.toFixed(1)} s probing data, ${probeSeconds.toFixed(1)} s probes)`);

  // Frontiers of probing error (1 − accuracy, mean over tasks), lower is better like the fidelity plots.
  const summaries = [...new Set([1, ic.headlineK])].map((k) =>
    summarizeFrontiers(`probing error k=${k}`, seriesInputs(ctx.points, (p) => {
      const a = meanProbeAccuracy(probes.get(p.id)!, k);
      return a === null ? null : 1 - a;
    })),
  );

  // Dashboards.
  const dashboards: SweepInterpResult['dashboards'] = [];
  const tDash = performance.now();
  if (ic.dashboards) {
    const targets = ctx.config.grid.l0Targets;
    const l0 = ic.dashboardL0 ?? (targets.length > 0 ? Math.exp(targets.reduce((s, t) => s + Math.log(t), 0) / targets.length) : 16);
    for (const p of dashboardPoints(ctx.points, l0)) {
      const saeDir = join(ctx.cacheDir, 'points', `${p.id}-${p.hash}`, 'sae');
      const sae = await loadSae(saeDir);
      const h = await harvestLatents(lm.lm, lm.tokenizer, ctx.data.site, sae, { corpus: 'brown+sotu', split: 'validation', tokens: ic.dashboardTokens, context: T, batch: ctx.config.data.batch, engine });
      const rel = join('dashboards', p.id);
      const dir = join(ctx.runDir, rel);
      await rm(`${dir}.partial`, { recursive: true, force: true });
      await writeDashboardFolder(`${dir}.partial`, {
        stats: h.stats,
        sae,
        tokenizer: lm.tokenizer,
        unembedding: lmUnembedding(lm.lm),
        pages: chooseLatentPages(h.stats, ic.dashboardLatents, 0),
        windowDocs: h.windowDocs,
        meta: { sae: `saes/${p.id}`, lm: ctx.data.description, site: ctx.data.site, corpus: 'brown+sotu', split: 'validation', tokens: h.stats.tokensSeen, seconds: h.seconds, created: new Date().toISOString() },
      });
      await rm(dir, { recursive: true, force: true });
      await rename(`${dir}.partial`, dir);
      dashboards.push({ arch: p.arch, point: p.id, l0: p.metrics.l0.mean, path: `${rel}/index.html` });
    }
    ctx.log(`interpretability: ${dashboards.length} dashboards (nearest L0 ${l0.toFixed(1)}) in ${((performance.now() - tDash) / 1000).toFixed(1)} s`);
  }
  const dashSeconds = (performance.now() - tDash) / 1000;
  const result: SweepInterpResult = {
    probes,
    baselines: baselines!,
    summaries,
    dashboards,
    seconds: { probeData: probeDataSeconds, probes: probeSeconds, dashboards: dashSeconds, total: (performance.now() - t0) / 1000 },
    statement: '',
  };
  result.statement = costStatement(await fidelitySummary(ctx.runDir), summaries[summaries.length - 1]!, ic.headlineK);
  await writeInterpOutputs(ctx.runDir, ctx.points, result, ic);
  return result;
}

async function fidelitySummary(runDir: string): Promise<FrontierSummary | null> {
  const f = JSON.parse(await readFile(join(runDir, 'frontier.json'), 'utf8')) as { summaries: FrontierSummary[] };
  return f.summaries.find((s) => s.metric === 'ΔLM loss') ?? f.summaries.find((s) => s.metric === 'FVU') ?? null;
}

const fmt = (v: number) => Number(v.toPrecision(3)).toString();

/**
 * The plain statement: the fidelity ranking (mean over the shared L0 range) against the probing ranking, and whether
 * the fidelity-best architecture loses probing accuracy to the probing-best beyond the seed spread at mid L0.
 */
export function costStatement(fidelity: FrontierSummary | null, probe: FrontierSummary, k: number): string {
  const rank = (s: FrontierSummary) => s.series.filter((x) => x.meanOverRange !== null).sort((a, b) => a.meanOverRange! - b.meanOverRange!);
  const fr = fidelity ? rank(fidelity) : [];
  const pr = rank(probe);
  if (fr.length < 2 || pr.length < 2) return 'Too few architectures with overlapping L0 ranges to compare fidelity and probing orderings.';
  const fBest = fr[0]!.name;
  const pBest = pr[0]!;
  const fBestProbe = pr.find((s) => s.name === fBest);
  const head = `Fidelity ordering (${fidelity!.metric}, mean over the shared L0 range, best first): ${fr.map((s) => s.name).join(' < ')}. Probing ordering (held-out accuracy of k=${k} probes, mean over tasks and the shared L0 range, best first): ${pr.map((s) => `${s.name} ${fmt(1 - s.meanOverRange!)}`).join(', ')}.`;
  if (!fBestProbe) return `${head} The fidelity-best architecture (${fBest}) has no probing frontier over the shared range.`;
  if (fBest === pBest.name) {
    const margin = pr.length > 1 ? ` (by ${fmt(100 * (pr[1]!.meanOverRange! - pBest.meanOverRange!))} accuracy points over ${pr[1]!.name})` : '';
    return probe.seeds < 2
      ? `${head} The fidelity-best architecture (${fBest}) is also the probing-best${margin}: no sign that the fidelity ordering costs interpretability on these tasks (one seed per point, so the margin is not tested against seed variation).`
      : `${head} The fidelity-best architecture (${fBest}) is also the probing-best${margin}: on these tasks the fidelity ordering does not cost interpretability.`;
  }
  const gap = fBestProbe.meanOverRange! - pBest.meanOverRange!;
  const mid = probe.orderings.find((o) => o.label === 'mid');
  const a = mid?.ranking.find((r) => r.name === fBest);
  const b = mid?.ranking.find((r) => r.name === pBest.name);
  const overlap = a && b ? a.yMin <= b.yMax : null;
  const verdict =
    probe.seeds < 2
      ? `one seed per point, so whether this exceeds seed-to-seed variation cannot be told`
      : overlap
        ? `within the seed spread at mid L0 (seed intervals overlap): no measurable cost`
        : `beyond the seed spread at mid L0: on these tasks the fidelity ordering costs interpretability`;
  return `${head} The fidelity-best architecture (${fBest}) probes ${fmt(100 * gap)} accuracy points below the probing-best (${pBest.name}); ${verdict}.`;
}

async function writeInterpOutputs(runDir: string, points: PointResult[], r: SweepInterpResult, ic: SweepInterpConfig): Promise<void> {
  // frontier.json: per-point probe numbers and the interpretability block.
  const fPath = join(runDir, 'frontier.json');
  const f = JSON.parse(await readFile(fPath, 'utf8')) as { points: (PointResult & { probe?: PointProbe })[] } & Record<string, unknown>;
  for (const p of f.points) p.probe = r.probes.get(p.id);
  f.interpretability = {
    tasks: ic.tasks,
    ks: ic.ks,
    headlineK: ic.headlineK,
    baselines: r.baselines,
    summaries: r.summaries,
    dashboards: r.dashboards,
    statement: r.statement,
    seconds: r.seconds,
    definitions: 'docs/interpretability.md',
  };
  await writeFileAtomic(fPath, JSON.stringify(f, null, 2) + '\n');

  const order = [...new Set(points.map((p) => p.arch))];
  const panels: PlotPanel[] = r.summaries.map((s) => ({
    summary: s,
    title: `${s.metric} vs L0 (1 − accuracy, mean over tasks; lower is better)`,
    yTitle: 'probing error',
    points: points.flatMap((p) => {
      const a = meanProbeAccuracy(r.probes.get(p.id)!, Number(s.metric.split('=')[1]));
      return a === null ? [] : [{ series: p.arch, l0: p.metrics.l0.mean, y: 1 - a, seed: p.seed, id: p.id }];
    }),
  }));
  const svg = await renderSvg(frontierSpec(panels, order));
  await writeFileAtomic(join(runDir, 'interp.svg'), svg);
  await writeFileAtomic(join(runDir, 'interp.png'), renderPng(svg));

  const tasks = Object.keys(r.baselines);
  const archs = order;
  const mean = (xs: number[]) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : NaN);
  const table = (md: boolean) => {
    const head = ['task', ...archs.map((a) => `${a} k=1 / k=${ic.headlineK} / best-1 F1`), `raw k=1 / k=${ic.headlineK} / all d / best-1 F1`];
    const rows = tasks.map((t) => {
      const cells = archs.map((a) => {
        const ps = points.filter((p) => p.arch === a).map((p) => r.probes.get(p.id)?.[t]).filter((x) => x !== undefined);
        return `${fmt(mean(ps.map((x) => x.meanAccuracy['1']!)))} / ${fmt(mean(ps.map((x) => x.meanAccuracy[String(ic.headlineK)]!)))} / ${fmt(mean(ps.map((x) => x.meanBestF1)))}`;
      });
      const b = r.baselines[t]!;
      return [t, ...cells, `${fmt(b.meanAccuracy['1']!)} / ${fmt(b.meanAccuracy[String(ic.headlineK)]!)} / ${b.meanAccuracyAll === null ? '–' : fmt(b.meanAccuracyAll)} / ${fmt(b.meanBestF1)}`];
    });
    if (md) return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((x) => `| ${x.join(' | ')} |`)].join('\n');
    const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
    return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((x) => `<tr>${x.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
  };
  const cost = `Added time: ${r.seconds.total.toFixed(1)} s (probing data ${r.seconds.probeData.toFixed(1)} s, probes ${r.seconds.probes.toFixed(1)} s, dashboards ${r.seconds.dashboards.toFixed(1)} s; cached probe results cost nothing).`;
  const intro = `Held-out accuracy of balanced one-vs-rest logistic probes on the top-k latents by mean difference (SAEBench-style k-sparse probing; tasks: ${tasks.join(', ')}), mean over each task's classes; per architecture the mean over its points (all L0s and seeds). Raw = the same probes on the site's activations. Definitions and limits: docs/interpretability.md.`;
  const statementsMd = r.summaries.flatMap((s) => s.statements.map((x) => `- ${x}`)).join('\n');
  const dashMd = r.dashboards.map((d) => `- ${d.arch}: [${d.point}](${d.path}) (L0 ${fmt(d.l0)})`).join('\n');
  const md = `\n## Interpretability: sparse probing and latent dashboards\n\n${r.statement}\n\n![probing error](interp.png)\n\n${intro}\n\n${table(true)}\n\n${statementsMd}\n\nDashboards (one per architecture, the point nearest the chosen L0):\n\n${dashMd || '- none'}\n\n${cost}\n`;
  const mdPath = join(runDir, 'report.md');
  await writeFileAtomic(mdPath, (await readFile(mdPath, 'utf8')).trimEnd() + '\n' + md);
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const html = `<section id="interpretability"><h2>Interpretability: sparse probing and latent dashboards</h2>
<p id="interp-statement">${esc(r.statement)}</p>
<figure id="probe-plot">${svg}</figure>
<p>${esc(intro)}</p>${table(false)}
<ul>${r.summaries.flatMap((s) => s.statements).map((x) => `<li>${esc(x)}</li>`).join('')}</ul>
<h3>Latent dashboards</h3><ul id="dashboards">${r.dashboards.map((d) => `<li>${esc(d.arch)}: <a href="${d.path}">${esc(d.point)}</a> (L0 ${fmt(d.l0)})</li>`).join('') || '<li>none</li>'}</ul>
<p>${esc(cost)}</p></section>
`;
  const htmlPath = join(runDir, 'report.html');
  const page = await readFile(htmlPath, 'utf8');
  const at = page.lastIndexOf('</body>');
  await writeFileAtomic(htmlPath, at < 0 ? page + html : page.slice(0, at) + html + page.slice(at));
}
