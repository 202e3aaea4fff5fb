/**
 * The dashboard folder: plain HTML files that open from disk with no network (a Content-Security-Policy forbids every
 * fetch; styles and the index's small script are inline; histograms are inline SVG).
 *   index.html          all latents: firing frequency, mean / max activation, concentration scores, top tokens;
 *                       sortable by any column, search box (latent id, or a token substring; `#q=…` presets it);
 *                       the density histogram (log10 firing frequency), dead and dense counts
 *   latents/<id>.html   one latent: top-k contexts, quantile-sampled contexts, activation histogram, logit effects,
 *                       nearest latents by decoder cosine
 * Token highlighting: background rgba(255, 140, 0, α) with α = activation / the latent's maximum over the harvest.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { COARSE_TAGS, type TextTokenizer, tokenPieces } from '@saelab/activations';
import { DENSE_FIRING_FRACTION, writeFileAtomic } from '@saelab/core';
import type { LoadedSae } from '../sae-folder.js';
import type { Unembedding } from './dashboard.js';
import { HIST_BINS, HIST_MIN_LOG2, type LatentStats, type StoredContext, concentrationScores } from './latent-stats.js';

export interface DashboardMeta {
  sae: string;
  lm: string;
  site: string;
  corpus: string;
  split: string;
  tokens: number;
  seconds: number;
  created: string;
}

export interface DashboardInput {
  stats: LatentStats;
  sae: Pick<LoadedSae, 'arch' | 'cfg' | 'params'>;
  tokenizer: Pick<TextTokenizer, 'decode'>;
  unembedding: Unembedding | null;
  pages: readonly number[];
  windowDocs: readonly string[];
  meta: DashboardMeta;
}

/** One row of the index (also written as latents.json). */
export interface LatentSummary {
  id: number;
  frequency: number;
  meanAct: number | null;
  maxAct: number | null;
  tokenTypes: number | null;
  topTokenShare: number | null;
  topToken: string | null;
  posPurity: number | null;
  posClass: string | null;
  topTokens: string[];
  page: boolean;
}

const CSP = `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">`;
const STYLE = `<style>
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em;color:#222}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right}
th{cursor:pointer;background:#f6f6f6;position:sticky;top:0}td.l,th.l{text-align:left}
.ctx{font:13px/1.9 ui-monospace,monospace;white-space:pre-wrap;border-bottom:1px solid #eee;padding:2px 0}
.t{border-radius:2px}.c{outline:1px solid #c40}.muted{color:#888}.act{display:inline-block;width:5em;color:#555}
h2{margin-top:1.4em;font-size:1.15em}.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}
</style>`;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** Token text for display: newlines and tabs made visible. */
const show = (s: string) => s.replace(/\n/g, '↵').replace(/\t/g, '⇥');
const fmt = (v: number | null, digits = 3) => (v === null || !Number.isFinite(v) ? '–' : Number(v.toPrecision(digits)).toString());

function summaries(inp: DashboardInput): LatentSummary[] {
  const { stats, tokenizer } = inp;
  const pageSet = new Set(inp.pages);
  const out: LatentSummary[] = [];
  for (let j = 0; j < stats.m; j++) {
    const n = stats.count[j]!;
    const sc = concentrationScores(stats.scoreSample(j));
    const topTokens: string[] = [];
    for (const c of stats.topContexts(j)) {
      const t = tokenizer.decode([c.tokens[c.center]!]);
      if (!topTokens.includes(t)) topTokens.push(t);
      if (topTokens.length >= 5) break;
    }
    out.push({
      id: j,
      frequency: n / Math.max(1, stats.tokensSeen),
      meanAct: n > 0 ? stats.sum[j]! / n : null,
      maxAct: n > 0 ? stats.max[j]! : null,
      tokenTypes: sc.tokenTypes,
      topTokenShare: sc.topTokenShare,
      topToken: sc.topToken === null ? null : tokenizer.decode([sc.topToken]),
      posPurity: sc.posPurity,
      posClass: sc.posClass === null ? null : COARSE_TAGS[sc.posClass]!,
      topTokens,
      page: pageSet.has(j),
    });
  }
  return out;
}

/** Bars as inline SVG: values per bin, labels under the first/last bin. */
function barChart(values: readonly number[], labels: readonly string[], opts: { width?: number; height?: number; colour?: string; title: string }): string {
  const W = opts.width ?? 460;
  const H = opts.height ?? 120;
  const max = Math.max(1, ...values);
  const bw = W / Math.max(1, values.length);
  const bars = values
    .map((v, i) => {
      const h = (v / max) * (H - 20);
      return `<rect x="${(i * bw).toFixed(1)}" y="${(H - 16 - h).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${opts.colour ?? '#4a7ab5'}"><title>${esc(labels[i] ?? '')}: ${v}</title></rect>`;
    })
    .join('');
  const first = labels[0] ?? '';
  const last = labels[labels.length - 1] ?? '';
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${esc(opts.title)}">${bars}<text x="0" y="${H - 2}" font-size="11">${esc(first)}</text><text x="${W}" y="${H - 2}" font-size="11" text-anchor="end">${esc(last)}</text></svg>`;
}

/** Density histogram: log10 firing frequency of the latents that fired, bins of 0.25 from −7 to 0. */
export function densityHistogram(freqs: readonly number[]): { bins: number[]; labels: string[]; dead: number; dense: number } {
  const bins = new Array<number>(28).fill(0);
  let dead = 0;
  let dense = 0;
  for (const f of freqs) {
    if (f === 0) {
      dead++;
      continue;
    }
    if (f > DENSE_FIRING_FRACTION) dense++;
    bins[Math.min(27, Math.max(0, Math.floor((Math.log10(f) + 7) * 4)))]!++;
  }
  return { bins, labels: bins.map((_, i) => `10^${(-7 + i / 4).toFixed(2)}`), dead, dense };
}

function contextHtml(c: StoredContext, maxAct: number, tokenizer: Pick<TextTokenizer, 'decode'>, doc: string | undefined): string {
  const pieces = tokenPieces(c.tokens, tokenizer);
  const spans = pieces
    .map((p, i) => {
      const a = c.acts[i]!;
      const alpha = maxAct > 0 ? Math.min(1, Math.max(0, a / maxAct)) : 0;
      const cls = i === c.center ? 't c' : 't';
      return `<span class="${cls}" data-act="${Number(a.toPrecision(4))}" title="${Number(a.toPrecision(4))}" style="background:rgba(255,140,0,${alpha.toFixed(3)})">${esc(show(p))}</span>`;
    })
    .join('');
  return `<div class="ctx"><span class="act">${fmt(c.act)}</span>${spans} <span class="muted">${esc(doc ?? '')}</span></div>`;
}

/** Direct logit effect of latent j's decoder direction: W_U (g ⊙ w_dec,j); the most promoted and suppressed tokens. */
export function logitEffects(wDec: Float32Array, dIn: number, j: number, u: Unembedding, top = 10): { promoted: [number, number][]; suppressed: [number, number][] } {
  const dir = new Float64Array(dIn);
  for (let i = 0; i < dIn; i++) dir[i] = wDec[j * dIn + i]! * (u.gain ? u.gain[i]! : 1);
  const e: [number, number][] = [];
  for (let v = 0; v < u.vocab; v++) {
    let s = 0;
    for (let i = 0; i < dIn; i++) s += u.weight[v * u.d + i]! * dir[i]!;
    e.push([v, s]);
  }
  e.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  return { promoted: e.slice(0, top), suppressed: e.slice(-top).reverse() };
}

/** The `n` latents whose decoder rows have the largest cosine with row j. */
export function nearestByDecoderCosine(wDec: Float32Array, dIn: number, dSae: number, j: number, n = 5): [number, number][] {
  const norm = (r: number) => {
    let s = 0;
    for (let i = 0; i < dIn; i++) s += wDec[r * dIn + i]! ** 2;
    return Math.sqrt(s);
  };
  const nj = norm(j);
  const out: [number, number][] = [];
  for (let r = 0; r < dSae; r++) {
    if (r === j) continue;
    let dot = 0;
    for (let i = 0; i < dIn; i++) dot += wDec[r * dIn + i]! * wDec[j * dIn + i]!;
    out.push([r, dot / Math.max(1e-12, nj * norm(r))]);
  }
  return out.sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, n);
}

function latentPage(inp: DashboardInput, j: number, s: LatentSummary, pageSet: Set<number>): string {
  const { stats, tokenizer } = inp;
  const maxAct = stats.max[j]!;
  const wDec = inp.sae.params.W_dec!.data;
  const { dIn, dSae } = inp.sae.cfg;
  const link = (r: number) => (pageSet.has(r) ? `<a href="${r}.html">${r}</a>` : String(r));
  const top = stats.topContexts(j);
  const sampled = stats.sampledContexts(j);
  // Quantile groups of the uniform sample (sorted by activation): four groups, highest first.
  const groups: string[] = [];
  for (let q = 0; q < 4 && sampled.length > 0; q++) {
    const lo = Math.floor((q * sampled.length) / 4);
    const hi = Math.floor(((q + 1) * sampled.length) / 4);
    if (hi <= lo) continue;
    const g = sampled.slice(lo, hi);
    groups.push(
      `<h3>top ${q * 25}–${(q + 1) * 25}% of the sample (activations ${fmt(g[g.length - 1]!.act)} – ${fmt(g[0]!.act)})</h3>` +
        g.map((c) => contextHtml(c, maxAct, tokenizer, inp.windowDocs[c.window])).join(''),
    );
  }
  // Activation histogram over the non-empty range of the log-spaced bins.
  const h = Array.from(stats.hist.subarray(j * HIST_BINS, (j + 1) * HIST_BINS));
  const firstBin = h.findIndex((v) => v > 0);
  const lastBin = h.length - 1 - [...h].reverse().findIndex((v) => v > 0);
  const histSvg =
    firstBin < 0
      ? '<p class="muted">never fired</p>'
      : barChart(h.slice(firstBin, lastBin + 1), h.slice(firstBin, lastBin + 1).map((_, i) => fmt(2 ** (HIST_MIN_LOG2 + (firstBin + i) / 4))), { title: 'activation histogram', colour: '#e08a1e' });
  let logits = '<p class="muted">the LM does not expose its unembedding (ONNX): no logit effects</p>';
  if (inp.unembedding && inp.unembedding.d === dIn) {
    const le = logitEffects(wDec, dIn, j, inp.unembedding);
    const rows = (xs: [number, number][]) => xs.map(([v, e]) => `<tr><td class="l"><code>${esc(show(tokenizer.decode([v])))}</code></td><td>${fmt(e)}</td></tr>`).join('');
    logits = `<div class="grid"><div><h3>promoted</h3><table>${rows(le.promoted)}</table></div><div><h3>suppressed</h3><table>${rows(le.suppressed)}</table></div></div>`;
  }
  const near = nearestByDecoderCosine(wDec, dIn, dSae, j)
    .map(([r, c]) => `<tr><td class="l">${link(r)}</td><td>${fmt(c)}</td></tr>`)
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">${CSP}<title>latent ${j}</title>${STYLE}</head><body>
<p><a href="../index.html">← all latents</a></p>
<h1>Latent ${j}</h1>
<p>fires on ${fmt(100 * s.frequency)}% of ${inp.meta.tokens} tokens · mean activation ${fmt(s.meanAct)} · max ${fmt(s.maxAct)} ·
effective token types ${fmt(s.tokenTypes)} · top-token share ${fmt(s.topTokenShare)}${s.topToken === null ? '' : ` (<code>${esc(show(s.topToken))}</code>)`} ·
POS purity ${fmt(s.posPurity)}${s.posClass ? ` (${s.posClass})` : ''}</p>
<h2>Activation histogram (log-spaced bins)</h2>${histSvg}
<h2>Top ${top.length} activating contexts</h2><div id="top">${top.map((c) => contextHtml(c, maxAct, tokenizer, inp.windowDocs[c.window])).join('')}</div>
<h2>Quantile-sampled contexts (uniform sample of ${sampled.length} firings, by activation)</h2><div id="sampled">${groups.join('')}</div>
<h2>Logit effects (decoder direction through the final norm gain and the unembedding)</h2>${logits}
<h2>Nearest latents by decoder cosine</h2><table>${near}</table>
</body></html>
`;
}

const INDEX_SCRIPT = `
const rows=[...document.querySelectorAll('#latents tbody tr')];
const q=document.getElementById('q');
function filter(){const v=q.value.trim().toLowerCase();let n=0;for(const r of rows){const ok=v===''||(/^\\d+$/.test(v)?r.dataset.id===v:r.dataset.tokens.includes(v));r.hidden=!ok;if(ok)n++;}document.getElementById('shown').textContent=n;}
q.addEventListener('input',filter);
const m=/[#&]q=([^&]*)/.exec(location.hash);if(m){q.value=decodeURIComponent(m[1]);}
filter();
let dir=1,last=-1;
document.querySelectorAll('#latents th').forEach((th,i)=>th.addEventListener('click',()=>{dir=last===i?-dir:(th.dataset.num?-1:1);last=i;
const tb=document.querySelector('#latents tbody');const key=(r)=>r.children[i].dataset.v??r.children[i].textContent;
rows.sort((a,b)=>{const x=key(a),y=key(b);if(th.dataset.num){const p=x===''?-Infinity:+x,s=y===''?-Infinity:+y;return dir*(p-s)||(+a.dataset.id-+b.dataset.id);}return dir*x.localeCompare(y);});
for(const r of rows)tb.appendChild(r);}));
const s=/[#&]sort=([a-z]+)/.exec(location.hash);if(s){const th=document.querySelector('#latents th[data-key="'+s[1]+'"]');if(th)th.click();}
`;

function indexPage(inp: DashboardInput, rows: LatentSummary[]): string {
  const dens = densityHistogram(rows.map((r) => r.frequency));
  const num = (v: number | null, digits = 3) => `<td data-v="${v === null ? '' : v}">${fmt(v, digits)}</td>`;
  const body = rows
    .map(
      (r) =>
        `<tr data-id="${r.id}" data-tokens="${esc(r.topTokens.join('\u0001').toLowerCase())}"><td data-v="${r.id}">${r.page ? `<a href="latents/${r.id}.html">${r.id}</a>` : r.id}</td>` +
        num(r.frequency) +
        num(r.meanAct) +
        num(r.maxAct) +
        num(r.tokenTypes) +
        num(r.topTokenShare) +
        num(r.posPurity) +
        `<td class="l">${esc(r.posClass ?? '')}</td><td class="l"><code>${r.topTokens.map((t) => esc(show(t))).join('</code> <code>')}</code></td></tr>`,
    )
    .join('\n');
  const m = inp.meta;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">${CSP}<title>SAE dashboard</title>${STYLE}</head><body>
<h1>SAE latent dashboard</h1>
<p>SAE <code>${esc(m.sae)}</code> (${inp.sae.arch.name}, d_in ${inp.sae.cfg.dIn}, d_sae ${inp.sae.cfg.dSae}) on <code>${esc(m.lm)}</code> @ <code>${esc(m.site)}</code>;
${m.tokens} tokens of ${esc(m.corpus)} / ${esc(m.split)} (${m.seconds.toFixed(1)} s); ${inp.pages.length} latent pages. Created ${esc(m.created)}.</p>
<p><b id="dead">${dens.dead}</b> dead latents (never fired), <b id="dense">${dens.dense}</b> dense (fire on &gt; ${100 * DENSE_FIRING_FRACTION}% of tokens), of ${rows.length}.</p>
<h2>Density: log10 firing frequency of the latents that fired</h2>
${barChart(dens.bins, dens.labels, { title: 'density histogram' })}
<h2>Latents</h2>
<p><label>search (latent id or token) <input id="q" type="search" placeholder="e.g. 42 or the"></label> <span id="shown">${rows.length}</span> shown.
Click a column to sort. Scores: docs/interpretability.md.</p>
<table id="latents"><thead><tr><th data-num="1" data-key="id">latent</th><th data-num="1" data-key="frequency">frequency</th><th data-num="1" data-key="mean">mean act</th><th data-num="1" data-key="max">max act</th><th data-num="1" data-key="types">token types</th><th data-num="1" data-key="share">top-token share</th><th data-num="1" data-key="pos">POS purity</th><th class="l" data-key="posclass">POS</th><th class="l" data-key="tokens">top tokens</th></tr></thead>
<tbody>
${body}
</tbody></table>
<script>${INDEX_SCRIPT}</script>
</body></html>
`;
}

/** Writes the dashboard into `dir` (created). */
export async function writeDashboardFolder(dir: string, inp: DashboardInput): Promise<LatentSummary[]> {
  await mkdir(join(dir, 'latents'), { recursive: true });
  const rows = summaries(inp);
  const pageSet = new Set(inp.pages);
  for (const j of inp.pages) await writeFileAtomic(join(dir, 'latents', `${j}.html`), latentPage(inp, j, rows[j]!, pageSet));
  await writeFileAtomic(join(dir, 'latents.json'), JSON.stringify({ meta: inp.meta, latents: rows }) + '\n');
  await writeFileAtomic(join(dir, 'index.html'), indexPage(inp, rows));
  return rows;
}
