/** Metrics of a trained SAE on held-out activations, in raw activation space (docs/specs/metrics-and-sweeps.md). */
import { type SpliceBaseline, spliceCrossEntropyWindows } from '@saelab/activations';
import { type GemmEngine, type HookableLM, MetricsAccumulator, type MetricsSummary, type RowSource, type Tensor, ceRecovered, defaultEngine, deltaLmLoss, iterateRows } from '@saelab/core';
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

/** ΔLM loss and CE recovered of one SAE spliced into an LM (docs/specs/metrics-and-sweeps.md), per token. */
export interface LmFidelity {
  ceClean: number;
  ceSpliced: number;
  ceZero: number;
  deltaLoss: number;
  /** null when zero-ablation costs nothing (CE_zero = CE_clean). */
  ceRecovered: number | null;
  tokens: number;
}

/**
 * Splices x̂ = decode(encode(x)) in at `site` on `windows` ([batch, seqLen] token windows, BOS first) and compares
 * the LM's cross-entropy with the clean and zero-ablated runs (`baselines`: see `spliceCrossEntropyWindows`).
 */
export async function lmFidelity(
  lm: HookableLM,
  windows: { tokens: Int32Array; batch: number; seqLen: number },
  site: string,
  sae: Pick<LoadedSae, 'arch' | 'cfg' | 'params'>,
  opts: { batchWindows?: number; engine?: GemmEngine; baselines?: Map<string, SpliceBaseline> } = {},
): Promise<LmFidelity> {
  const d = lm.siteDim(site);
  if (d !== sae.cfg.dIn) throw new Error(`the LM's ${site} has d = ${d} but the SAE's d_in is ${sae.cfg.dIn}`);
  const engine = opts.engine ?? (await defaultEngine());
  const reconstruct = async (x: Tensor) =>
    sae.arch.decode(sae.params, await sae.arch.encode(sae.params, x, sae.cfg, { engine }), sae.cfg, { engine });
  const r = await spliceCrossEntropyWindows(lm, windows, site, reconstruct, opts);
  return {
    ceClean: r.ceClean,
    ceSpliced: r.ceSpliced,
    ceZero: r.ceZero,
    deltaLoss: deltaLmLoss(r.ceClean, r.ceSpliced),
    ceRecovered: r.ceZero === r.ceClean ? null : ceRecovered(r.ceClean, r.ceSpliced, r.ceZero),
    tokens: r.tokens,
  };
}
