/**
 * The human-readable report: `report.md` (links frontier.png) and `report.html` (self-contained: the SVG inline,
 * no scripts, no external files), both with the plain-language findings, the area table and one table per
 * architecture.
 */
import type { SweepBaselines } from './baselines.js';
import type { FrontierSummary } from './frontier.js';
import type { PointResult } from './point.js';
import { trainingFindings, trainingTable, tuningTables } from './report-training.js';
import type { TuneResult } from './tune.js';

export interface ReportInput {
  title: string;
  command: string;
  createdAt: string;
  data: string;
  lm: { ceClean: number; ceZero: number } | null;
  summaries: FrontierSummary[];
  points: PointResult[];
  provenance: Record<string, unknown>;
  wallSeconds: number;
  /** PCA / ablation reference lines (baselines.ts). */
  baselines?: SweepBaselines;
  /** Dead latents per (architecture, setting), seeds pooled, for the density section. */
  density?: { arch: string; setting: string; dead: number; latents: number }[];
  /** The density plot as SVG, inlined in the HTML report. */
  densitySvg?: string;
  /** The tuning stage's results (empty or absent: tuning was off). */
  tuning?: TuneResult[];
  /** The learning-curve figure: its SVG (inlined in HTML) and PNG file name (linked from Markdown), and whose curves. */
  curves?: { svg: string; png: string; ids: string[] } | null;
}

const f = (v: number | null | undefined, digits = 3) =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : Math.abs(v) !== 0 && (Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3) ? v.toExponential(2) : v.toPrecision(digits);

function areaTable(s: FrontierSummary): string[][] {
  const ci = (name: string) => {
    const m = s.stats?.meanOverRange.find((x) => x.series === name);
    return m ? `[${f(m.lo, 4)}, ${f(m.hi, 4)}]` : '–';
  };
  return [
    ['series', 'frontier points', `area (${s.metric} · ln L0)`, `mean ${s.metric} over range`, '95% bootstrap interval'],
    ...s.series.map((x) => [x.name, String(x.frontier.length), f(x.area, 4), f(x.meanOverRange, 4), ci(x.name)]),
  ];
}

/** Every comparison behind the findings' '<' / '≈' (frontier-stats.ts). */
function testTable(s: FrontierSummary): string[][] | null {
  const tests = s.stats?.tests ?? [];
  if (tests.length === 0) return null;
  return [
    ['A vs B', 'at L0', 'mean A − mean B', 'SE seeds', 'SE eval (bootstrap)', 'df', 'p', 'p (Holm)', 'separated'],
    ...tests.map((t) => [`${t.a} vs ${t.b} (${t.seeds[0]}/${t.seeds[1]} seeds)`, t.l0.toFixed(1), f(t.difference), f(t.seSeed), f(t.seEval), t.df.toFixed(1), f(t.p), f(t.pHolm), t.separated ? 'yes' : 'no']),
  ];
}

function baselineTable(b: SweepBaselines): string[][] {
  const lines = [...b.pca, b.meanAblation, b.zeroAblation];
  return [
    ['baseline', 'active coefficients', 'FVU', 'EV per token (SAEBench)', 'ΔLM loss', 'CE rec.', 'CE loss score (SAEBench)', 'KL div', 'KL score'],
    ...lines.map((l) => [
      l.rank === null ? l.name : `PCA rank ${l.rank}`,
      l.rank === null ? '–' : String(l.rank),
      f(l.fvu),
      f(l.saebenchExplainedVariance),
      f(l.lm?.deltaLoss),
      f(l.lm?.ceRecovered),
      f(l.lm?.ceLossScore),
      f(l.lm?.klDiv),
      f(l.lm?.klDivScore),
    ]),
  ];
}

function fieldTable(points: PointResult[]): string[][] {
  return [
    ['point', 'L0', '1 − FVU (ours)', 'EV per token (SAEBench)', 'CE rec. (ours)', 'CE loss score (SAEBench)', 'KL div (SAEBench)', 'KL score', 'dead (eval)', 'dead (last training window)'],
    ...points.map((p) => [
      p.id,
      p.metrics.l0.mean.toFixed(1),
      f(p.metrics.fvu === null ? null : 1 - p.metrics.fvu),
      f(p.field?.saebench.explainedVariance),
      f(p.lm?.ceRecovered),
      f(p.field?.saebench.lm?.ceLossScore),
      f(p.field?.saebench.lm?.klDivWithSae),
      f(p.field?.saebench.lm?.klDivScore),
      f(p.metrics.deadFraction as number),
      f(p.metrics.deadFractionTrainWindow as number | undefined),
    ]),
  ];
}

function conventions(r: ReportInput): string[] {
  const lm = r.baselines?.lm;
  const out = [
    'Our metrics are defined in docs/metrics.md; the SAEBench columns follow sae_bench/evals/core/main.py: explained variance per token ' +
      '(1 − ‖x − x̂‖² / ‖x − batch mean‖², averaged over tokens, mean per evaluation batch of 16 windows), KL(clean ‖ spliced) over non-BOS positions ' +
      'and its score (KL_zero − KL_sae) / KL_zero, and the CE loss score, all with the site zero-ablated at every position (BOS included) and predictions made at BOS excluded from the averages.',
  ];
  if (lm) {
    out.push(
      `CE_zero in both conventions: ours (non-BOS positions zeroed, every prediction averaged) ${lm.ceZero.toFixed(4)} vs clean ${lm.ceClean.toFixed(4)} nats/token; ` +
        `SAEBench/SAELens (every position zeroed, BOS predictions excluded) ${lm.ceZeroSaebench.toFixed(4)} vs clean ${lm.ceCleanSaebench.toFixed(4)}; KL of that ablation ${lm.klZeroSaebench.toFixed(4)} nats.` +
        (lm.hasBos ? '' : ' This LM has no BOS token, so the two conventions coincide here.'),
    );
  }
  return out;
}

/** Baselines, field metrics, density and tests: the sections shared by the Markdown and HTML reports. */
interface Section {
  title: string;
  paragraphs: string[];
  tables: { caption?: string; rows: string[][] }[];
  image?: string;
}

function extraSections(r: ReportInput): Section[] {
  const out: Section[] = [];
  const tested = r.summaries.map((s) => ({ s, t: testTable(s) })).filter((x) => x.t);
  if (tested.length) {
    out.push({
      title: 'Statistical tests behind the findings',
      paragraphs: [r.summaries.find((s) => s.stats)?.stats?.method ?? ''],
      tables: tested.map((x) => ({ caption: `${x.s.metric}: ${x.s.stats!.tests.length} comparisons, Holm-corrected together.`, rows: x.t! })),
    });
  }
  if (r.baselines) {
    out.push({
      title: 'Baselines',
      paragraphs: [
        `PCA fitted on ${r.baselines.pcaRows} training rows, evaluated on the held-out rows: at rank r every token has r dense coefficients (the same number of active coefficients as an SAE at L0 = r). ` +
          'Mean-ablation replaces the site by the training mean (PCA rank 0), zero-ablation by zeros (non-BOS positions, our convention). Drawn on the plots as grey lines.',
      ],
      tables: [{ rows: baselineTable(r.baselines) }],
    });
  }
  if (r.points.some((p) => p.field)) {
    out.push({ title: 'Metrics as the field defines them', paragraphs: conventions(r), tables: byArch(r.points).map(([arch, ps]) => ({ caption: arch, rows: fieldTable(ps) })) });
  }
  if (r.density && r.density.length) {
    out.push({
      title: 'Latent density',
      paragraphs: ['Histogram of log10(firing frequency) of the latents on the held-out rows, per architecture and setting (seeds pooled); dead latents (never fired) are counted in the table, not drawn.'],
      tables: [{ rows: [['architecture', 'setting', 'dead latents', 'of']].concat(r.density.map((d) => [d.arch, d.setting, String(d.dead), String(d.latents)])) }],
      image: 'density.png',
    });
  }
  return out;
}

function pointTable(points: PointResult[]): string[][] {
  return [
    ['point', 'target', 'λ / k', 'L0 (p10/p50/p90)', 'MSE', 'FVU', 'ΔLM loss', 'CE rec.', 'shrinkage', 'dead', 'dense', 'train s', 'tok/s'],
    ...points.map((p) => [
      p.id,
      p.target === null ? '–' : String(p.target),
      p.sparsity.knob === 'k' ? String(p.sparsity.value) : f(p.sparsity.value, 3),
      `${p.metrics.l0.mean.toFixed(1)} (${f(p.metrics.l0.p10)}/${f(p.metrics.l0.p50)}/${f(p.metrics.l0.p90)})`,
      f(p.metrics.mse),
      f(p.metrics.fvu),
      f(p.lm?.deltaLoss),
      f(p.lm?.ceRecovered),
      f(p.metrics.shrinkage as number | null),
      f(p.metrics.deadFraction as number),
      f(p.metrics.denseFraction as number),
      p.train.seconds.toFixed(1),
      String(Math.round(p.train.tokensPerSecond)),
    ]),
  ];
}

const mdTable = (rows: string[][]) => [`| ${rows[0]!.join(' | ')} |`, `|${rows[0]!.map(() => '---').join('|')}|`, ...rows.slice(1).map((r) => `| ${r.join(' | ')} |`)].join('\n');

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const htmlTable = (rows: string[][]) =>
  `<table><thead><tr>${rows[0]!.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${rows
    .slice(1)
    .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;

function byArch(points: PointResult[]): [string, PointResult[]][] {
  const m = new Map<string, PointResult[]>();
  for (const p of points) m.set(p.arch, [...(m.get(p.arch) ?? []), p]);
  return [...m.entries()].map(([a, ps]) => [a, ps.sort((x, y) => x.metrics.l0.mean - y.metrics.l0.mean)]);
}

const computeSeconds = (points: PointResult[]) => points.reduce((a, p) => a + p.train.seconds + p.train.calibrationSeconds, 0);

function intro(r: ReportInput): string[] {
  return [
    `Data: ${r.data}.`,
    r.lm
      ? `Language-model baseline on the held-out tokens: CE clean ${r.lm.ceClean.toFixed(4)} nats/token, CE with the site zero-ablated ${r.lm.ceZero.toFixed(4)}.`
      : 'No language model (activations given directly): fidelity is FVU, and ΔLM loss / CE recovered are not available.',
    `${r.points.length} points, ${computeSeconds(r.points).toFixed(0)} s of SAE training and calibration in all (when each point was computed); this run's wall time ${r.wallSeconds.toFixed(0)} s (cached points cost nothing).`,
  ];
}

/** The tuning stage and the training section (report-training.ts). */
function trainingMarkdown(r: ReportInput): string[] {
  const out: string[] = [];
  if (r.tuning && r.tuning.length > 0) {
    out.push('## Tuning stage', '', 'Each architecture trained at one L0 target over the grid below at the full point budget; every point of the architecture uses the chosen setting.', '');
    for (const t of tuningTables(r.tuning, r.points)) out.push(`### ${t.title}`, '', t.note, '', mdTable(t.rows), '');
  }
  out.push('## Training: dead latents and convergence', '', ...trainingFindings(r.points).map((l) => `- ${l}`), '');
  if (r.curves) out.push(`![learning curves](${r.curves.png})`, '', `Curves of ${r.curves.ids.join(', ')} (files: \`curves/<point>.jsonl\`).`, '');
  out.push(mdTable(trainingTable(r.points)), '');
  return out;
}

function trainingHtml(r: ReportInput): string[] {
  const out: string[] = [];
  if (r.tuning && r.tuning.length > 0) {
    out.push('<h2>Tuning stage</h2><p>Each architecture trained at one L0 target over the grid below at the full point budget; every point of the architecture uses the chosen setting.</p>');
    for (const t of tuningTables(r.tuning, r.points)) out.push(`<h3>${esc(t.title)}</h3><p>${esc(t.note)}</p>`, htmlTable(t.rows.map((row) => row.map((c) => c.replace(/\*\*/g, '')))));
  }
  out.push(`<h2>Training: dead latents and convergence</h2><ul>${trainingFindings(r.points).map((l) => `<li>${esc(l)}</li>`).join('')}</ul>`);
  if (r.curves) out.push(`<figure id="curves-plot">${r.curves.svg.replace(/^<\?xml[^>]*>/, '')}<figcaption>Learning curves of ${esc(r.curves.ids.join(', '))}.</figcaption></figure>`);
  out.push(htmlTable(trainingTable(r.points).map((row) => row.map((c) => c.replace(/\*\*/g, '')))));
  return out;
}

export function renderMarkdown(r: ReportInput): string {
  const out = [`# ${r.title}`, '', `Command: \`${r.command}\`  `, `Created: ${r.createdAt}`, '', ...intro(r).map((l) => `${l}  `), '', '![frontiers](frontier.png)', '', 'Lines: Pareto frontiers of seed means; bands: 95% bootstrap intervals (seeds and evaluation windows) when seeds > 1; grey dashed: PCA at rank = L0; grey dotted levels (ΔLM panel): mean- and zero-ablation.', ''];
  for (const s of r.summaries) {
    out.push(`## Findings: ${s.metric}`, '', ...s.statements.map((l) => `- ${l}`), '', mdTable(areaTable(s)), '');
  }
  for (const x of extraSections(r)) {
    out.push(`## ${x.title}`, '', ...x.paragraphs.filter(Boolean).flatMap((p) => [p, '']));
    if (x.image) out.push(`![${x.title}](${x.image})`, '');
    for (const t of x.tables) out.push(...(t.caption ? [`**${t.caption}**`, ''] : []), mdTable(t.rows), '');
  }
  out.push(...trainingMarkdown(r));
  out.push('## Points by architecture', '');
  for (const [arch, ps] of byArch(r.points)) out.push(`### ${arch}`, '', mdTable(pointTable(ps)), '');
  out.push('## Provenance', '', '```json', JSON.stringify(r.provenance, null, 2), '```', '');
  return out.join('\n');
}

export function renderHtml(r: ReportInput, svg: string): string {
  const body = [
    `<h1>${esc(r.title)}</h1>`,
    `<p class="meta">Command: <code>${esc(r.command)}</code><br>Created: ${esc(r.createdAt)}</p>`,
    ...intro(r).map((l) => `<p>${esc(l)}</p>`),
    `<figure id="frontier-plot">${svg.replace(/^<\?xml[^>]*>/, '')}<figcaption>Fidelity vs L0 (log scale): faint dots are individual SAEs, lines the Pareto frontier of seed means${r.summaries[0]?.seeds && r.summaries[0].seeds > 1 ? ', shaded bands 95% bootstrap intervals (seeds and evaluation windows)' : ''}; grey: PCA at rank = L0 and, with an LM, mean- and zero-ablation.</figcaption></figure>`,
  ];
  for (const s of r.summaries) {
    body.push(`<h2>Findings: ${esc(s.metric)}</h2><ul>${s.statements.map((l) => `<li>${esc(l)}</li>`).join('')}</ul>`, htmlTable(areaTable(s)));
  }
  for (const x of extraSections(r)) {
    body.push(`<h2>${esc(x.title)}</h2>`, ...x.paragraphs.filter(Boolean).map((p) => `<p>${esc(p)}</p>`));
    if (x.image && r.densitySvg) body.push(`<figure>${r.densitySvg.replace(/^<\?xml[^>]*>/, '')}</figure>`);
    body.push(...x.tables.map((t) => (t.caption ? `<p><strong>${esc(t.caption)}</strong></p>` : '') + htmlTable(t.rows)));
  }
  body.push(...trainingHtml(r));
  body.push('<h2>Points by architecture</h2>');
  for (const [arch, ps] of byArch(r.points)) body.push(`<h3>${esc(arch)}</h3>`, htmlTable(pointTable(ps)));
  body.push(`<h2>Provenance</h2><pre>${esc(JSON.stringify(r.provenance, null, 2))}</pre>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.title)}</title>
<style>
body { font-family: 'DejaVu Sans', Arial, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
figcaption, .meta { color: #555; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
</style></head>
<body>
${body.join('\n')}
</body></html>
`;
}
