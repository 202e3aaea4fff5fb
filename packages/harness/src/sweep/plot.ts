/**
 * Frontier plots: a Vega-Lite spec (one panel per metric, log-x L0, one colour per series; every point faint,
 * seed-mean frontier as a line over them, min–max seed band when seeds > 1), rendered to SVG by Vega in Node
 * (renderer 'none': no canvas needed) and to PNG by resvg. Why these libraries: docs/sweep.md.
 */
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { FrontierSummary } from './frontier.js';
import { type BaselinePanelData, baselineLayers } from './plot-baselines.js';

export const SERIES_COLOURS = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#eeca3b', '#9d755d'];

export interface PlotPanel {
  summary: FrontierSummary;
  title: string;
  yTitle: string;
  /** Every individual point (all seeds). */
  points: { series: string; l0: number; y: number; seed: number; id: string }[];
  /** PCA line and ablation levels (plot-baselines.ts). */
  baselines?: BaselinePanelData;
}

export function frontierSpec(panels: PlotPanel[], seriesOrder: string[]): vl.TopLevelSpec {
  const colour = { field: 'series', type: 'nominal', title: 'architecture', scale: { domain: seriesOrder, range: SERIES_COLOURS.slice(0, seriesOrder.length) } } as const;
  const x = { field: 'l0', type: 'quantitative', title: 'L0 (active latents per token, log scale)', scale: { type: 'log', nice: false, padding: 12 } } as const;
  const layers = (p: PlotPanel) => {
    const frontier = p.summary.series.flatMap((s) => s.frontier.map((f, i) => ({ series: s.name, l0: f.l0, y: f.y, order: i })));
    // Dashed: the frontier's flat extension from its last point to the series' largest L0 (see frontierAt).
    const extension = p.summary.series.flatMap((s) => {
      const last = s.frontier[s.frontier.length - 1];
      return last && s.maxL0 > last.l0 ? [{ series: s.name, l0: last.l0, y: last.y, order: 0 }, { series: s.name, l0: s.maxL0, y: last.y, order: 1 }] : [];
    });
    // Bands: the bootstrap intervals of the seed-mean frontier (frontier-stats.ts) where computed, else seed min–max.
    const intervals = p.summary.stats?.intervals ?? [];
    const bands = intervals.some((i) => i.points.length > 0)
      ? intervals.flatMap((i) => i.points.map((q) => ({ series: i.series, l0: q.l0, yMin: q.lo, yMax: q.hi })))
      : p.summary.series.flatMap((s) => s.means.map((m) => ({ series: s.name, l0: m.l0, yMin: m.yMin, yMax: m.yMax })));
    // Log y when every drawn value is positive: ablation levels sit 2–3 decades above good SAEs.
    const ys = [...p.points.map((q) => q.y), ...bands.flatMap((b) => [b.yMin, b.yMax]), ...(p.baselines?.pca.map((q) => q.y) ?? []), ...(p.baselines?.levels.map((q) => q.y) ?? [])];
    // With values ≤ 0 (a ΔLM loss can dip below 0 within noise), symlog: linear within ±c of 0, log beyond, c the
    // smallest positive SAE value, so good SAEs and the ablation levels are both readable.
    const positive = p.points.map((q) => Math.abs(q.y)).filter((v) => v > 0);
    const yScale =
      ys.length > 0 && ys.every((v) => v > 0)
        ? { type: 'log', padding: 8 }
        : positive.length > 0
          ? { type: 'symlog', constant: Math.min(...positive), padding: 8 }
          : { zero: false, padding: 8 };
    const yEnc = { field: 'y', type: 'quantitative', title: p.yTitle, scale: yScale } as const;
    const out: unknown[] = [];
    if (p.summary.seeds > 1) {
      out.push({
        data: { values: bands },
        mark: { type: 'area', opacity: 0.18 },
        encoding: { x, y: { field: 'yMin', type: 'quantitative', title: p.yTitle, scale: yScale }, y2: { field: 'yMax' }, color: colour, order: { field: 'l0' } },
      });
    }
    if (p.baselines) out.push(...baselineLayers(p.baselines, x, yScale, p.yTitle));
    out.push({
      data: { values: p.points },
      mark: { type: 'point', filled: true, opacity: 0.45, size: 40 },
      encoding: { x, y: yEnc, color: colour, tooltip: [{ field: 'id' }, { field: 'l0' }, { field: 'y' }] },
    });
    if (extension.length > 0) {
      out.push({
        data: { values: extension },
        mark: { type: 'line', strokeWidth: 1.5, strokeDash: [4, 3] },
        encoding: { x, y: yEnc, color: colour, detail: { field: 'series' }, order: { field: 'order' } },
      });
    }
    out.push({
      data: { values: frontier },
      mark: { type: 'line', strokeWidth: 2.5, point: { size: 60 } },
      encoding: { x, y: yEnc, color: colour, order: { field: 'order' } },
    });
    return out;
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    config: { font: 'DejaVu Sans, Arial, sans-serif', view: { stroke: '#ccc' }, legend: { symbolOpacity: 1 } },
    hconcat: panels.map((p) => ({ title: p.title, width: 380, height: 280, layer: layers(p) })),
    resolve: { scale: { color: 'shared' } },
  } as unknown as vl.TopLevelSpec;
}

export async function renderSvg(spec: vl.TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** PNG at `scale`× the SVG's size; text uses the system's DejaVu/Arial/sans fonts. */
export function renderPng(svg: string, scale = 2): Uint8Array {
  const r = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return new Uint8Array(r.render().asPng());
}
