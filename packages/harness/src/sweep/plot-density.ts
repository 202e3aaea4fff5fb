/**
 * Latent-density plot: per architecture, the histogram of log10(firing frequency) of its latents on the held-out
 * rows (SAEBench's feature density; SAELens logs the same histogram), one line per L0 setting (seeds pooled),
 * dead latents (frequency 0) as a count in the table beside it. Read it as: mass near 0 = dense latents, a long
 * left tail = rare latents, dead ones are the most wasted capacity.
 */
import type * as vl from 'vega-lite';
import { SERIES_COLOURS } from './plot.js';
import type { PointResult } from './point.js';

export interface DensityRow {
  arch: string;
  setting: string;
  /** Bin centre in log10 frequency. */
  x: number;
  /** Fraction of the architecture-setting's latents (seeds pooled) in the bin. */
  fraction: number;
}

const settingOf = (p: PointResult) => (p.target !== null ? `L0 target ${p.target}` : `${p.sparsity.knob} ${p.sparsity.value}`);

export function densityRows(points: PointResult[]): { rows: DensityRow[]; dead: { arch: string; setting: string; dead: number; latents: number }[] } {
  const groups = new Map<string, { arch: string; setting: string; edges: number[]; counts: number[]; dead: number; latents: number }>();
  for (const p of points) {
    const h = p.field?.density;
    if (!h) continue;
    const key = `${p.arch}|${settingOf(p)}`;
    const g = groups.get(key);
    if (!g) groups.set(key, { arch: p.arch, setting: settingOf(p), edges: h.edges, counts: [...h.counts], dead: h.dead, latents: h.latents });
    else if (g.edges.length === h.edges.length) {
      h.counts.forEach((c, i) => (g.counts[i] += c));
      g.dead += h.dead;
      g.latents += h.latents;
    }
  }
  const rows: DensityRow[] = [];
  for (const g of groups.values()) {
    g.counts.forEach((c, i) => rows.push({ arch: g.arch, setting: g.setting, x: (g.edges[i]! + g.edges[i + 1]!) / 2, fraction: c / g.latents }));
  }
  return { rows, dead: [...groups.values()].map((g) => ({ arch: g.arch, setting: g.setting, dead: g.dead, latents: g.latents })) };
}

export function densitySpec(rows: DensityRow[]): vl.TopLevelSpec {
  const settings = [...new Set(rows.map((r) => r.setting))];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    config: { font: 'DejaVu Sans, Arial, sans-serif', view: { stroke: '#ccc' } },
    data: { values: rows },
    facet: { column: { field: 'arch', type: 'nominal', title: null } },
    spec: {
      width: 220,
      height: 160,
      mark: { type: 'line', interpolate: 'step', strokeWidth: 1.6 },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: 'log10 firing frequency (held-out rows)' },
        y: { field: 'fraction', type: 'quantitative', title: 'fraction of latents' },
        color: { field: 'setting', type: 'nominal', title: 'setting', sort: settings, scale: { range: SERIES_COLOURS } },
      },
    },
  } as unknown as vl.TopLevelSpec;
}
