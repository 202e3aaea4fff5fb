/**
 * Trained SAEs on disk as SAELens folders: weights in raw activation space (normalisation folded in), cfg.json with
 * SAELens's fields plus our provenance block under `saelab`.
 */
import type { BaseSaeConfig, Params, SaeArchitecture } from '@saelab/core';
import { SAELAB_VERSION, assertFinite, loadSaelensFolder } from '@saelab/core';
import { architectureFromSaelens } from './registry.js';

export interface LoadedSae {
  arch: SaeArchitecture<any, any>;
  cfg: BaseSaeConfig & Record<string, unknown>;
  params: Params;
  /** The whole cfg.json. */
  json: Record<string, unknown>;
}

export const CODE_VERSION = SAELAB_VERSION;

/**
 * Loads an SAELens folder (ours, or one written by SAELens ≥ 3, checked against sae_lens 6.x `saes/*.py` and
 * `loading/pretrained_sae_loaders.py`). SAELens-specific conventions are folded into plain weights here so every
 * architecture's encode/decode gives SAELens's outputs:
 * - pre-6.0 cfgs: `normalize_activations` may be a bool or null, the TopK k may sit in `activation_fn_kwargs`,
 *   and `activation_fn_str` may be spelled `activation_fn`;
 * - TopK `rescale_acts_by_decoder_norm`: SAELens ranks pi ⊙ ‖W_dec,i‖ and decodes f / ‖W_dec,i‖ — folded into
 *   W_enc, b_enc and W_dec exactly as SAELens's own `_fold_norm_topk` does;
 * - JumpReLU: SAELens gates with `pre > relu(threshold)` on ReLU(pre), i.e. our pi ⊙ H(pi − θ) with θ = max(θ, 0);
 *   older checkpoints store `log_threshold` (θ = exp);
 * - a `scaling_factor` / `finetuning_scaling_factor` tensor scales latents before decoding: folded into W_dec rows.
 */
export async function loadSae(dir: string): Promise<LoadedSae> {
  const { params, cfg: json } = await loadSaelensFolder(dir);
  const where = `${dir}/cfg.json`;
  // Pre-6.0 SAELens wrote a bool (false = none, true = the April-update scaling) or null.
  const rawNorm = json.normalize_activations;
  const norm = rawNorm === undefined || rawNorm === null || rawNorm === false ? 'none' : rawNorm === true ? 'expected_average_only_in' : rawNorm;
  if (norm !== 'none') {
    throw new Error(
      `${where}: normalize_activations is '${String(norm)}'; only folders with the normalisation folded into the weights ('none') are supported`,
    );
  }
  if (json.normalize_decoder === true) throw new Error(`${where}: normalize_decoder = true is not supported (fold the decoder norms first)`);
  // Older SAELens TopK folders keep k under activation_fn_kwargs.
  const kwargs = (json.activation_fn_kwargs ?? {}) as Record<string, unknown>;
  const arch = architectureFromSaelens(json);
  let cfg: BaseSaeConfig & Record<string, unknown>;
  try {
    cfg = arch.fromSaelensConfig({ ...json, k: json.k ?? kwargs.k });
  } catch (e) {
    // The architectures parse with zod: turn its issue list into one line per bad field.
    const issues = (e as { issues?: { path: PropertyKey[]; message: string }[] }).issues;
    if (!issues) throw e;
    throw new Error(`${where}: invalid ${arch.saelensArchitecture} config: ${issues.map((i) => `'${i.path.map(String).join('.')}': ${i.message}`).join('; ')}`);
  }
  if (arch.name === 'jumprelu' && !params.threshold && params.log_threshold) {
    params.threshold = { data: params.log_threshold.data.map(Math.exp), shape: [...params.log_threshold.shape] };
    delete params.log_threshold;
  }
  for (const name of Object.keys(arch.paramShapes(cfg))) {
    if (!params[name]) throw new Error(`${dir}: ${arch.name} SAE needs tensor '${name}', which sae_weights.safetensors lacks`);
  }
  const shapes = arch.paramShapes(cfg);
  for (const [name, shape] of Object.entries(shapes)) {
    const t = params[name]!;
    if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) {
      throw new Error(`${dir}: tensor '${name}' has shape [${t.shape.join(', ')}] but a ${arch.name} SAE with d_in=${cfg.dIn}, d_sae=${cfg.dSae} needs [${shape.join(', ')}]`);
    }
  }
  for (const [name, t] of Object.entries(params)) assertFinite(t, `${dir}/sae_weights.safetensors: tensor '${name}'`);
  foldSaelensConventions(dir, arch, cfg, params, json);
  return { arch, cfg, params, json };
}

/** Folds SAELens's inference-time extras (see {@link loadSae}) into the weights, in place. */
function foldSaelensConventions(dir: string, arch: SaeArchitecture<any, any>, cfg: BaseSaeConfig, params: Params, json: Record<string, unknown>): void {
  const { dIn, dSae } = cfg;
  const scale = params.finetuning_scaling_factor ?? params.scaling_factor;
  if (scale) {
    if (scale.data.length !== dSae) throw new Error(`${dir}: scaling factor tensor has ${scale.data.length} entries, want d_sae=${dSae}`);
    const W = params.W_dec!.data;
    for (let i = 0; i < dSae; i++) for (let j = 0; j < dIn; j++) W[i * dIn + j] = W[i * dIn + j]! * scale.data[i]!;
    delete params.finetuning_scaling_factor;
    delete params.scaling_factor;
  }
  if (arch.name === 'topk' && json.rescale_acts_by_decoder_norm === true) {
    const Wd = params.W_dec!.data;
    const We = params.W_enc!.data;
    const be = params.b_enc!.data;
    for (let i = 0; i < dSae; i++) {
      let ss = 0;
      for (let j = 0; j < dIn; j++) ss += Wd[i * dIn + j]! ** 2;
      const n = Math.max(Math.sqrt(ss), 1e-8); // SAELens clamps at 1e-8 too
      be[i] = be[i]! * n;
      for (let j = 0; j < dIn; j++) {
        Wd[i * dIn + j] = Wd[i * dIn + j]! / n;
        We[j * dSae + i] = We[j * dSae + i]! * n;
      }
    }
  }
  if (arch.name === 'jumprelu') {
    const th = params.threshold!.data;
    for (let i = 0; i < th.length; i++) if (th[i]! < 0) th[i] = 0;
  }
}

/** Writing is architecture-generic and lives in core. */
export { saveSae } from '@saelab/core';
