/**
 * A point's metrics as the field defines them (SAEBench / SAELens), its latent-density histogram, and the
 * per-block sums the report's bootstrap resamples (eval-blocks.ts). Stored in result.json under `field`.
 */
import { windowedLmStats, runMeans } from '@saelab/activations';
import { type DensityHistogram, type GemmEngine, SaeBenchExplainedVariance, type Tensor, defaultEngine, klDivScore, latentDensityHistogram } from '@saelab/core';
import type { LoadedSae } from '../sae-folder.js';
import { type SweepBaselines, sweepBaselines } from './baselines.js';
import type { SweepData } from './dataset.js';
import { evalBlocks, forEachEvalGroup } from './eval-blocks.js';

export interface PointField {
  saebench: {
    /** Mean over held-out tokens of 1 − ‖x − x̂‖² / ‖x − batch mean‖² (SAEBench's explained_variance). */
    explainedVariance: number | null;
    lm: {
      klDivWithSae: number;
      klDivWithAblation: number;
      /** (KL_ablation − KL_sae) / KL_ablation, ablation = zeros at every position. */
      klDivScore: number | null;
      ceLossWithSae: number;
      ceLossWithoutSae: number;
      ceLossWithAblation: number;
      /** (CE_abl − CE_sae) / (CE_abl − CE_clean), BOS predictions excluded, ablation at every position. */
      ceLossScore: number | null;
    } | null;
  };
  /** log10 firing frequency of the latents on the held-out rows. */
  density: DensityHistogram;
  /** Per-block sums (eval-blocks.ts) for the bootstrap over evaluation windows. */
  blocks: {
    kind: 'window' | 'rows';
    rows: number[];
    /** Σ non-zero latents over the block's rows. */
    l0: number[];
    /** Σ ‖x − x̂‖² over the block's rows. */
    sse: number[];
    /** LM (our convention): Σ (CE_spliced − CE_clean) over the window's predictions, and their count. */
    dCe?: number[];
    predictions?: number[];
  };
}

interface SaeLike {
  encode(x: Tensor): Promise<Tensor>;
  decode(f: Tensor): Promise<Tensor>;
  dSae: number;
}

function saeOf(sae: Pick<LoadedSae, 'arch' | 'cfg' | 'params'>, engine: GemmEngine): SaeLike {
  return {
    dSae: sae.cfg.dSae,
    encode: (x) => sae.arch.encode(sae.params, x, sae.cfg, { engine }),
    decode: (f) => sae.arch.decode(sae.params, f, sae.cfg, { engine }),
  };
}

/** The field metrics of a trained SAE (in its served form: what its folder loads as) on the sweep's held-out data. */
export async function pointFieldMetrics(
  data: SweepData,
  served: Pick<LoadedSae, 'arch' | 'cfg' | 'params'>,
  o: { cacheDir: string; batchWindows: number; engine?: GemmEngine; log: (s: string) => void },
): Promise<PointField> {
  const engine = o.engine ?? (await defaultEngine());
  const sae = saeOf(served, engine);
  const blocks = evalBlocks(data);
  const nb = blocks.rows.length;
  const l0 = new Array<number>(nb).fill(0);
  const sse = new Array<number>(nb).fill(0);
  const firing = new Float64Array(sae.dSae);
  const ev = new SaeBenchExplainedVariance();
  const d = data.d;
  await forEachEvalGroup(data, blocks, o.batchWindows, async (x, first) => {
    const f = await sae.encode(x);
    const y = await sae.decode(f);
    ev.addBatch(x, y);
    let row = 0;
    for (let b = first; b < Math.min(nb, first + o.batchWindows); b++) {
      for (let r = row; r < row + blocks.rows[b]!; r++) {
        for (let i = 0; i < sae.dSae; i++) {
          if (f.data[r * sae.dSae + i] !== 0) {
            l0[b]!++;
            firing[i]!++;
          }
        }
        let e = 0;
        for (let j = 0; j < d; j++) e += (x.data[r * d + j]! - y.data[r * d + j]!) ** 2;
        sse[b]! += e;
      }
      row += blocks.rows[b]!;
    }
  });
  const field: PointField = {
    saebench: { explainedVariance: ev.value(), lm: null },
    density: latentDensityHistogram(firing, data.heldOutRows),
    blocks: { kind: blocks.kind, rows: blocks.rows, l0, sse },
  };
  if (data.lm && data.evalWindows && blocks.kind === 'window') {
    const base: SweepBaselines = await sweepBaselines(data, o.cacheDir, o.batchWindows, o.log);
    const w = data.evalWindows;
    const st = await windowedLmStats(data.lm.lm, { tokens: w.tokens, batch: w.windows, seqLen: w.seqLen }, data.site, [{ name: 'sae', rows: 'non-bos', fn: async (x) => sae.decode(await sae.encode(x)) }], {
      batchWindows: o.batchWindows,
    });
    const s = runMeans(st, st.runs.sae!);
    const c = runMeans(st, st.clean);
    const abl = base.lm!;
    field.saebench.lm = {
      klDivWithSae: s.klNonBos,
      klDivWithAblation: abl.klZeroSaebench,
      klDivScore: klDivScore(s.klNonBos, abl.klZeroSaebench),
      ceLossWithSae: s.ceNonBos,
      ceLossWithoutSae: c.ceNonBos,
      ceLossWithAblation: abl.ceZeroSaebench,
      ceLossScore: abl.ceZeroSaebench === c.ceNonBos ? null : (abl.ceZeroSaebench - s.ceNonBos) / (abl.ceZeroSaebench - c.ceNonBos),
    };
    field.blocks.dCe = Array.from(st.runs.sae!.ceAll, (v, i) => v - st.clean.ceAll[i]!);
    field.blocks.predictions = Array.from(st.counts.predAll);
  }
  return field;
}
