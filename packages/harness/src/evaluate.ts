/** Metrics of a trained SAE on held-out activations, in raw activation space (metrics-and-sweeps.md). */
import { type GemmEngine, MetricsAccumulator, type MetricsSummary, type RowSource, defaultEngine, iterateRows } from '@saelab/core';
import type { LoadedSae } from './sae-folder.js';

export async function evaluateSae(
  sae: Pick<LoadedSae, 'arch' | 'cfg' | 'params'>,
  source: RowSource,
  opts: { batch?: number; engine?: GemmEngine } = {},
): Promise<MetricsSummary> {
  if (source.d !== sae.cfg.dIn) throw new Error(`activations have d = ${source.d} but the SAE's d_in is ${sae.cfg.dIn}`);
  if (source.rows === 0) throw new Error('no rows to evaluate on');
  const engine = opts.engine ?? (await defaultEngine());
  const acc = new MetricsAccumulator(sae.cfg.dIn, sae.cfg.dSae);
  for await (const { data } of iterateRows(source, opts.batch ?? 4096)) {
    const x = { data, shape: [data.length / source.d, source.d] };
    const f = await sae.arch.encode(sae.params, x, sae.cfg, { engine });
    const xHat = await sae.arch.decode(sae.params, f, sae.cfg, { engine });
    acc.add(x, xHat, f);
  }
  return acc.summary();
}

/** A summary as plain JSON (drops the per-latent firing counts). */
export function metricsJson(m: MetricsSummary): Record<string, unknown> {
  const { firingCounts: _omit, ...rest } = m;
  return rest as unknown as Record<string, unknown>;
}
