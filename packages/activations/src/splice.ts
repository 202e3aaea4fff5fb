/**
 * ΔLM loss by splicing: next-token cross-entropy of the LM on the same tokens
 *   - clean:   unmodified forward pass,
 *   - spliced: the activation at `site` replaced by `reconstruct(x)` (e.g. an SAE's x̂),
 *   - zero:    the activation at `site` replaced by zeros (the ablation baseline of "CE loss recovered",
 *              CE_rec = (CE_zero − CE_spliced) / (CE_zero − CE_clean); Bricken et al. 2023, Gao et al. 2024).
 * Rows at BOS are left untouched in the spliced and zero runs: they are excluded from harvests, so an SAE never
 * saw them, and the BOS residual is a huge-norm outlier in most LMs.
 */
import { type HookableLM, type Tensor, nextTokenCrossEntropy } from '@saelab/core';

export interface SpliceResult {
  ceClean: number;
  ceSpliced: number;
  ceZero: number;
  /** ceSpliced − ceClean. */
  deltaLoss: number;
  /** (ceZero − ceSpliced) / (ceZero − ceClean); NaN when ceZero = ceClean. */
  ceRecovered: number;
}

/**
 * `tokens` is [batch, seqLen] row-major. `reconstruct` receives the [rows, d] activations at non-BOS positions
 * and must return the same shape. `baseline`: the clean and zero-ablated cross-entropies of these same tokens,
 * when already known (they do not depend on the SAE), so only the spliced forward runs.
 */
export async function spliceCrossEntropy(
  lm: HookableLM,
  tokens: Int32Array,
  batch: number,
  seqLen: number,
  site: string,
  reconstruct: (x: Tensor) => Tensor | Promise<Tensor>,
  baseline?: { ceClean: number; ceZero: number },
): Promise<SpliceResult> {
  const d = lm.siteDim(site);
  const bos = lm.info.bos;
  const rowsToEdit: number[] = [];
  for (let i = 0; i < tokens.length; i++) if (tokens[i] !== bos) rowsToEdit.push(i);

  /** Replace the non-BOS rows of `act` by `f(those rows)`. */
  const editRows = (f: (x: Tensor) => Tensor | Promise<Tensor>) => async (act: Tensor): Promise<Tensor> => {
    const sub = new Float32Array(rowsToEdit.length * d);
    rowsToEdit.forEach((r, i) => sub.set(act.data.subarray(r * d, (r + 1) * d), i * d));
    const y = await f({ data: sub, shape: [rowsToEdit.length, d] });
    if (y.shape.length !== 2 || y.shape[0] !== rowsToEdit.length || y.shape[1] !== d) {
      throw new Error(`spliceCrossEntropy: reconstruct returned shape [${y.shape.join(', ')}], expected [${rowsToEdit.length}, ${d}]`);
    }
    const out = act.data.slice();
    rowsToEdit.forEach((r, i) => out.set(y.data.subarray(i * d, (i + 1) * d), r * d));
    return { data: out, shape: act.shape };
  };

  const ce = async (replace?: (x: Tensor) => Tensor | Promise<Tensor>) => {
    const r = await lm.run(tokens, batch, seqLen, replace ? { replace: { site, fn: editRows(replace) } } : {});
    const v = nextTokenCrossEntropy(r.logits!, tokens, batch, seqLen).mean;
    if (!Number.isFinite(v)) throw new Error(`spliceCrossEntropy: non-finite cross-entropy at ${site}`);
    return v;
  };
  const ceClean = baseline?.ceClean ?? (await ce());
  const ceSpliced = await ce(reconstruct);
  const ceZero = baseline?.ceZero ?? (await ce((x) => ({ data: new Float32Array(x.data.length), shape: x.shape })));
  const denom = ceZero - ceClean;
  return { ceClean, ceSpliced, ceZero, deltaLoss: ceSpliced - ceClean, ceRecovered: denom === 0 ? Number.NaN : (ceZero - ceSpliced) / denom };
}

/** Clean and zero-ablated cross-entropies per forward batch of one set of windows, keyed by site and batching. */
export interface SpliceBaseline {
  key: string;
  clean: number[];
  zero: number[];
}

/**
 * `spliceCrossEntropy` over many windows, `batchWindows` per forward pass: the per-token means of the three
 * cross-entropies (every window has the same length, so window-weighted means are per-token means).
 * `baselines` caches the SAE-independent clean and zero-ablated runs across calls: pass the same Map only with the
 * same (unchanged) LM and the same windows — e.g. every SAE of a sweep — and each later call runs one forward per
 * batch instead of three.
 */
export async function spliceCrossEntropyWindows(
  lm: HookableLM,
  windows: { tokens: Int32Array; batch: number; seqLen: number },
  site: string,
  reconstruct: (x: Tensor) => Tensor | Promise<Tensor>,
  opts: { batchWindows?: number; baselines?: Map<string, SpliceBaseline> } = {},
): Promise<{ ceClean: number; ceSpliced: number; ceZero: number; windows: number; tokens: number }> {
  const { batch: n, seqLen: T } = windows;
  const per = opts.batchWindows ?? 16;
  if (n === 0) throw new Error('spliceCrossEntropyWindows: no windows to evaluate on');
  const key = `${site}|${n}x${T}|${per}`;
  const known = opts.baselines?.get(key);
  const baseline: SpliceBaseline = known ?? { key, clean: [], zero: [] };
  let clean = 0;
  let spliced = 0;
  let zero = 0;
  for (let w = 0, i = 0; w < n; w += per, i++) {
    const B = Math.min(per, n - w);
    const r = await spliceCrossEntropy(lm, windows.tokens.subarray(w * T, (w + B) * T), B, T, site, reconstruct, known && { ceClean: known.clean[i]!, ceZero: known.zero[i]! });
    baseline.clean[i] = r.ceClean;
    baseline.zero[i] = r.ceZero;
    clean += r.ceClean * B;
    spliced += r.ceSpliced * B;
    zero += r.ceZero * B;
  }
  opts.baselines?.set(key, baseline);
  return { ceClean: clean / n, ceSpliced: spliced / n, ceZero: zero / n, windows: n, tokens: n * (T - 1) };
}
