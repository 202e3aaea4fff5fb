/**
 * Probe calibration vs one-pass L0 targeting (issue 15, part 2), from sweeps of the same points run with each
 * `calibration.method`: per architecture and target, the seed means of held-out L0 (and its miss), FVU and ΔLM loss,
 * and FVU moved to the target L0 along the architecture's local frontier slope (d ln FVU / d ln L0 between its
 * targets, from the same sweep), so methods that land at different L0 compare at one L0. Also Welch's t on the
 * per-seed adjusted ln FVU, controller vs probe.
 *
 *   npx tsx tools/compare-l0-methods.ts probe=runs/default-new/frontier.json ctl=runs/ctl-1/frontier.json ...
 */
import { readFileSync } from 'node:fs';

interface Point { arch: string; target: number | null; seed: number; metrics: { l0: { mean: number }; fvu: number }; lm?: { deltaLoss?: number } | null; train: { seconds: number; calibrationSeconds: number } }

const runs = process.argv.slice(2).map((a) => {
  const [name, path] = a.split('=');
  if (!name || !path) throw new Error(`expected name=path/to/frontier.json, got '${a}'`);
  return { name, points: (JSON.parse(readFileSync(path, 'utf8')) as { points: Point[] }).points.filter((p) => p.target !== null) };
});
if (runs.length < 2) throw new Error('give at least two runs: name=frontier.json');

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v: number[]) => Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / Math.max(1, v.length - 1));

/** Local slope of ln FVU on ln L0 at `target` from a run's seed-mean points of one architecture. */
function slope(points: Point[], arch: string, target: number): number {
  const ts = [...new Set(points.filter((p) => p.arch === arch).map((p) => p.target!))].sort((a, b) => a - b);
  const at = (t: number) => {
    const ps = points.filter((p) => p.arch === arch && p.target === t);
    return { x: mean(ps.map((p) => Math.log(p.metrics.l0.mean))), y: mean(ps.map((p) => Math.log(p.metrics.fvu))) };
  };
  let i = ts.findIndex((t) => t >= target);
  i = i <= 0 ? 1 : i;
  const a = at(ts[i - 1]!);
  const b = at(ts[Math.min(i, ts.length - 1)]!);
  return (b.y - a.y) / (b.x - a.x);
}

/** Welch's t statistic and df. */
function welch(a: number[], b: number[]): { t: number; df: number } {
  const va = sd(a) ** 2 / a.length;
  const vb = sd(b) ** 2 / b.length;
  return { t: (mean(a) - mean(b)) / Math.sqrt(va + vb), df: (va + vb) ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1)) };
}

const archs = [...new Set(runs[0]!.points.map((p) => p.arch))];
console.log('| arch | target | method | L0 (miss) | FVU | FVU at target L0 | ΔLM loss | train + calibration s | t vs ' + runs[0]!.name + ' (adjusted ln FVU) |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const arch of archs) {
  for (const target of [...new Set(runs[0]!.points.filter((p) => p.arch === arch).map((p) => p.target!))].sort((a, b) => a - b)) {
    const adjustedOf = (run: (typeof runs)[number]) => {
      const s = slope(run.points, arch, target);
      return run.points.filter((p) => p.arch === arch && p.target === target).map((p) => ({ p, adj: Math.log(p.metrics.fvu) + s * (Math.log(target) - Math.log(p.metrics.l0.mean)) }));
    };
    const base = adjustedOf(runs[0]!);
    for (const run of runs) {
      const rows = adjustedOf(run);
      if (rows.length === 0) continue;
      const l0 = mean(rows.map((r) => r.p.metrics.l0.mean));
      const w = run === runs[0] ? null : welch(rows.map((r) => r.adj), base.map((r) => r.adj));
      console.log(
        `| ${arch} | ${target} | ${run.name} | ${l0.toFixed(2)} (${(100 * (l0 / target - 1)).toFixed(0)}%) | ${mean(rows.map((r) => r.p.metrics.fvu)).toFixed(4)} ± ${sd(rows.map((r) => r.p.metrics.fvu)).toFixed(4)} | ` +
          `${Math.exp(mean(rows.map((r) => r.adj))).toFixed(4)} | ${mean(rows.map((r) => r.p.lm?.deltaLoss ?? NaN)).toFixed(4)} | ` +
          `${mean(rows.map((r) => r.p.train.seconds + r.p.train.calibrationSeconds)).toFixed(0)} | ${w ? `${w.t.toFixed(2)} (df ${w.df.toFixed(1)})` : '–'} |`,
      );
    }
  }
}
