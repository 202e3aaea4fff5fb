/**
 * Baseline layers of the frontier plots (baselines.ts): the PCA line (rank = active coefficients per token, the
 * same count as L0) on every panel, and the mean- and zero-ablation levels on the ΔLM-loss panel. Drawn in
 * fixed greys outside the architecture colour scale, labelled at their right end, so the legend stays the
 * architectures'.
 */
import type { SweepBaselines } from './baselines.js';

export type BaselineMetric = 'FVU' | 'ΔLM loss';

export interface BaselinePanelData {
  pca: { l0: number; y: number }[];
  levels: { name: string; y: number }[];
}

/** The baseline values one panel draws, restricted to the panel's L0 range (×/÷ 1.5). */
export function baselineData(b: SweepBaselines, metric: BaselineMetric, l0Range: [number, number]): BaselinePanelData {
  const [lo, hi] = l0Range;
  const y = (l: SweepBaselines['pca'][number]) => (metric === 'FVU' ? l.fvu : (l.lm?.deltaLoss ?? null));
  const pca = b.pca
    .filter((l) => l.rank! >= lo / 1.5 && l.rank! <= hi * 1.5)
    .map((l) => ({ l0: l.rank!, y: y(l) }))
    .filter((p): p is { l0: number; y: number } => p.y !== null && Number.isFinite(p.y));
  const levels: BaselinePanelData['levels'] = [];
  if (metric === 'ΔLM loss' && b.lm) {
    const mean = b.meanAblation.lm?.deltaLoss;
    const zero = b.zeroAblation.lm?.deltaLoss;
    if (mean !== undefined && Number.isFinite(mean)) levels.push({ name: 'mean-ablation', y: mean });
    if (zero !== undefined && Number.isFinite(zero)) levels.push({ name: 'zero-ablation', y: zero });
  }
  return { pca, levels };
}

/** Vega-Lite layers for one panel (x: the panel's L0 encoding; yTitle: its axis title). */
export function baselineLayers(d: BaselinePanelData, x: object, yScale: object, yTitle: string): unknown[] {
  const y = { field: 'y', type: 'quantitative', title: yTitle, scale: yScale };
  const out: unknown[] = [];
  if (d.pca.length > 0) {
    const rows = d.pca.map((p, i) => ({ ...p, order: i, label: i === d.pca.length - 1 ? 'PCA (rank = L0)' : '' }));
    out.push({
      data: { values: rows },
      mark: { type: 'line', stroke: '#666', strokeWidth: 1.5, strokeDash: [6, 3], point: { fill: '#666', size: 18 } },
      encoding: { x, y, order: { field: 'order' }, tooltip: [{ field: 'l0', title: 'PCA rank' }, { field: 'y' }] },
    });
    out.push({
      data: { values: rows.filter((r) => r.label) },
      mark: { type: 'text', align: 'left', dx: 6, dy: -6, fontSize: 10, fill: '#444' },
      encoding: { x, y, text: { field: 'label' } },
    });
  }
  if (d.levels.length > 0) {
    out.push({
      data: { values: d.levels },
      mark: { type: 'rule', stroke: '#999', strokeWidth: 1.2, strokeDash: [2, 2] },
      encoding: { y },
    });
    out.push({
      data: { values: d.levels },
      mark: { type: 'text', align: 'left', baseline: 'bottom', x: 4, dy: -2, fontSize: 10, fill: '#555' },
      encoding: { y, text: { field: 'name' } },
    });
  }
  return out;
}
