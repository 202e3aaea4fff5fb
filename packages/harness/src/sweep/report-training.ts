/**
 * The report's training sections: the tuning stage (grid, validation scores, choice), how each point trained
 * (lr, dead latents over its last training window, the convergence check), and the learning-curve figure (one L0
 * target per architecture). Tables are rows of strings; report.ts renders them as Markdown or HTML.
 */
import type * as vl from 'vega-lite';
import type { CurveRecord } from './curves.js';
import { SERIES_COLOURS } from './plot.js';
import type { PointResult } from './point.js';
import type { TuneResult } from './tune.js';

const g = (v: number | null | undefined, digits = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toPrecision(digits));
const pct = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(1)}%`);

/** Dead latents over the last training window: the report's bar (issue 11: every point under 10%). */
export const DEAD_LIMIT = 0.1;

/**
 * The local slope d ln FVU / d ln L0 of an architecture's points around `l0` (seed means per target, the two
 * targets that bracket it, else the nearest two): what moving along its frontier to another L0 costs or buys.
 */
export function frontierSlope(points: PointResult[], arch: string, l0: number): number | null {
  const byTarget = new Map<number, { l0: number[]; fvu: number[] }>();
  for (const p of points) {
    if (p.arch !== arch || p.target === null || p.metrics.fvu === null || !(p.metrics.fvu > 0) || !(p.metrics.l0.mean > 0)) continue;
    const t = byTarget.get(p.target) ?? { l0: [], fvu: [] };
    t.l0.push(Math.log(p.metrics.l0.mean));
    t.fvu.push(Math.log(p.metrics.fvu));
    byTarget.set(p.target, t);
  }
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const pts = [...byTarget.values()].map((t) => ({ x: mean(t.l0), y: mean(t.fvu) })).sort((a, b) => a.x - b.x);
  if (pts.length < 2) return null;
  const x = Math.log(l0);
  let i = pts.findIndex((p) => p.x >= x);
  i = i <= 0 ? 1 : i; // bracketing pair [i − 1, i], or the nearest two at either end
  const [a, b] = [pts[i - 1]!, pts[Math.min(i, pts.length - 1)]!];
  return b.x === a.x ? null : (b.y - a.y) / (b.x - a.x);
}

/** One table per tuned architecture: every setting tried, its validation scores, the chosen one marked. */
export function tuningTables(results: TuneResult[], points: PointResult[] = []): { title: string; note: string; rows: string[][] }[] {
  return results.map((r) => {
    const knobs = [...new Set(r.entries.flatMap((e) => [...(e.beta1 !== undefined ? ['β1'] : []), ...Object.keys(e.archConfig ?? {})]))];
    const rows = [
      ['lr', ...knobs, 'λ / k', 'L0 (validation)', 'FVU (validation)', 'dead (last window)', 'dead (validation rows)', 'on target', 'chosen'],
      ...r.entries.map((e) => [
        g(e.lr, 2),
        ...knobs.map((k) => (k === 'β1' ? g(e.beta1, 2) : g(e.archConfig?.[k], 2))),
        g(e.sparsity, 3),
        e.l0.toFixed(1),
        g(e.fvu, 4),
        pct(e.deadFractionTrainWindow),
        pct(e.deadFractionValidation),
        e.onTarget ? 'yes' : 'no',
        e === r.chosen || sameSetting(e, r.chosen) ? '**✓**' : '',
      ]),
    ];
    const fallback = r.offTarget
      ? ' — no setting landed in the band, so the lowest FVU overall was taken'
      : r.deadFallback
        ? ' — every on-target setting had too many dead latents, so the one with the fewest was taken'
        : '';
    const extended = r.extendedLrs?.length ? ` The choice sat on the grid's edge, so lr ${r.extendedLrs.map((v) => g(v, 2)).join(', ')} ${r.extendedLrs.length > 1 ? 'were' : 'was'} tried beyond it.` : '';
    const b = r.budgetCheck;
    // At the same λ a longer run lands at another L0; moving it back along the frontier's local slope makes the two
    // budgets comparable at the ×1 run's L0 (an estimate: the slope is the sweep's, between its targets).
    const slope = b ? frontierSlope(points, r.arch, r.chosen.l0) : null;
    const adjusted = b && slope !== null && b.l0 > 0 ? b.fvu * Math.pow(r.chosen.l0 / b.l0, slope) : null;
    const same = Math.abs(b ? b.l0 / r.chosen.l0 - 1 : 1) < 0.01;
    const budget = b
      ? ` Budget check: the chosen setting with ${b.factor}× the tokens (same ${same ? 'k' : 'λ'}) reaches validation FVU ${g(b.fvu, 4)} at L0 ${b.l0.toFixed(1)} (${pct((b.fvu - r.chosen.fvu) / r.chosen.fvu)} FVU, ${pct((b.l0 - r.chosen.l0) / r.chosen.l0)} L0 vs ×1), dead ${pct(b.deadFractionTrainWindow)}` +
        (adjusted !== null && !same ? `; moved to the ×1 run's L0 along the sweep's frontier slope (d ln FVU / d ln L0 = ${slope!.toFixed(2)}): FVU ≈ ${g(adjusted, 4)}, ${pct((adjusted - r.chosen.fvu) / r.chosen.fvu)} vs ×1.` : '.')
      : '';
    const note = `${r.arch} ×${r.expansion} at L0 target ${r.target}; validation rows ${r.validation.start}–${r.validation.start + r.validation.rows - 1} of the training split (never trained on by these runs; the reported metrics use the held-out split). Rule: ${r.rule}${fallback}.${extended}${budget}`;
    return { title: `${r.arch} ×${r.expansion}`, note, rows };
  });
}

const sameSetting = (a: TuneResult['chosen'], b: TuneResult['chosen']) => a.lr === b.lr && a.beta1 === b.beta1 && JSON.stringify(a.archConfig ?? {}) === JSON.stringify(b.archConfig ?? {});

/** The points that miss a bar: dead latents over the last training window ≥ 10%, or still improving at the end. */
export function trainingFindings(points: PointResult[]): string[] {
  const out: string[] = [];
  const withDead = points.filter((p) => p.train.deadFractionTrainWindow !== undefined);
  const dead = withDead.filter((p) => p.train.deadFractionTrainWindow! >= DEAD_LIMIT);
  if (withDead.length > 0) {
    out.push(
      dead.length === 0
        ? `Every point has < ${100 * DEAD_LIMIT}% dead latents over its last training window (worst ${pct(Math.max(...withDead.map((p) => p.train.deadFractionTrainWindow!)))}).`
        : `${dead.length} of ${withDead.length} points have ≥ ${100 * DEAD_LIMIT}% dead latents over their last training window: ${dead.map((p) => `${p.id} (${pct(p.train.deadFractionTrainWindow)})`).join(', ')}.`,
    );
  }
  const checked = points.filter((p) => p.train.convergence);
  const flagged = checked.filter((p) => !p.train.convergence!.converged);
  if (checked.length > 0) {
    const thr = pct(checked[0]!.train.convergence!.threshold);
    out.push(
      flagged.length === 0
        ? `No point is flagged as unconverged: every training objective fell by ≤ ${thr} over the last 20% of its steps (largest ${pct(Math.max(...checked.map((p) => p.train.convergence!.relativeDrop)))}).`
        : `${flagged.length} of ${checked.length} points are flagged as still improving (training objective — the loss without AuxK and the pre-activation loss — fell by > ${thr} over the last 20% of steps, lr decay included): ${flagged.map((p) => `${p.id} (${pct(p.train.convergence!.relativeDrop)})`).join(', ')}.`,
    );
    const drops = checked.map((p) => p.train.convergence!.constantLrDrop).filter((v): v is number => v !== null);
    if (drops.length > 0) {
      const still = checked.filter((p) => (p.train.convergence!.constantLrDrop ?? 0) > checked[0]!.train.convergence!.threshold);
      out.push(
        `Before the lr decay (the 20% of steps ending at 80%), ${still.length} of ${checked.length} objectives still fell by > ${thr} (largest ${pct(Math.max(...drops))}); the rest of the last-20% fall is the decay's annealing.` +
          ' The tuning section\'s budget check says what more tokens would buy.',
      );
    }
  }
  return out;
}

/** Per point: how it trained. */
export function trainingTable(points: PointResult[]): string[][] {
  return [
    ['point', 'lr', 'steps', 'tokens', 'resampled', 'dead (last window)', 'dead (eval rows)', 'objective drop, 60→80%', 'objective drop, last 20%', 'converged'],
    ...points.map((p) => [
      p.id,
      g(p.train.lr ?? null, 2),
      String(p.train.steps),
      String(p.train.tokens),
      p.train.resampledLatents === undefined ? '–' : String(p.train.resampledLatents),
      pct(p.train.deadFractionTrainWindow),
      pct(p.metrics.deadFraction as number),
      pct(p.train.convergence?.constantLrDrop),
      pct(p.train.convergence?.relativeDrop),
      p.train.convergence ? (p.train.convergence.converged ? 'yes' : '**no**') : '–',
    ]),
  ];
}

/** The points whose curves the figure shows: per architecture, the first seed at the tuning target (else the middle target). */
export function curvePoints(points: PointResult[], target: number | null): PointResult[] {
  const out: PointResult[] = [];
  for (const arch of [...new Set(points.map((p) => p.arch))]) {
    const ps = points.filter((p) => p.arch === arch && p.target !== null);
    const targets = [...new Set(ps.map((p) => p.target!))].sort((a, b) => a - b);
    const t = target !== null && targets.includes(target) ? target : targets[Math.floor((targets.length - 1) / 2)];
    const p = ps.filter((q) => q.target === t).sort((a, b) => a.seed - b.seed)[0];
    if (p) out.push(p);
  }
  return out;
}

/** Vega-Lite: training FVU (log) and the rolling dead fraction vs tokens, one line per architecture. */
export function curvesSpec(curves: { series: string; id: string; curve: CurveRecord[] }[]): vl.TopLevelSpec {
  const order = curves.map((c) => c.series);
  const colour = { field: 'series', type: 'nominal', title: 'architecture', scale: { domain: order, range: SERIES_COLOURS.slice(0, order.length) } } as const;
  const values = curves.flatMap((c) => c.curve.map((r) => ({ series: c.series, id: c.id, tokens: r.tokens, fvu: r.fvu, dead: r.deadFractionRolling ?? r.deadFraction, loss: r.loss })));
  const x = { field: 'tokens', type: 'quantitative', title: 'training tokens' } as const;
  const panel = (title: string, field: string, yTitle: string, log: boolean) => ({
    title,
    width: 380,
    height: 240,
    mark: { type: 'line', strokeWidth: 1.8 },
    encoding: { x, y: { field, type: 'quantitative', title: yTitle, scale: log ? { type: 'log' } : { zero: true } }, color: colour, detail: { field: 'id' } },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    config: { font: 'DejaVu Sans, Arial, sans-serif', view: { stroke: '#ccc' } },
    data: { values },
    hconcat: [panel('training FVU (batch mean per record)', 'fvu', 'FVU (log scale)', true), panel('dead latents (rolling window: last quarter of the run)', 'dead', 'fraction dead', false)],
    resolve: { scale: { color: 'shared' } },
  } as unknown as vl.TopLevelSpec;
}
