/**
 * SAEs as SAELens folders: `saveSae` writes `sae_weights.safetensors` + `cfg.json` (SAELens fields, the
 * architecture's own fields, our provenance under `saelab`); one loader reads them back, either for a known
 * architecture, exactly (`loadSaeAs`), or picking the architecture from cfg.json through the registry and folding
 * SAELens's conventions into the weights (`loadSae`, for folders written by SAELens ≥ 3 as well as ours).
 * `servedForm` gives, in memory, what a trained SAE's folder loads as.
 */
import { loadSaelensFolder, saveSaelensFolder } from '../io/checkpoint.js';
import { type Params, assertFinite } from '../tensor.js';
import type { BaseSaeConfig, SaeArchitecture } from './contract.js';
import { architectureForSaelens, getArchitecture } from './registry.js';

export const SAELAB_VERSION = '0.1.0';

/** An SAE ready to run: its architecture, config and parameters (raw activation space). */
export interface LoadedSae {
  arch: SaeArchitecture<any, any>;
  cfg: BaseSaeConfig & Record<string, unknown>;
  params: Params;
  /** The whole cfg.json. */
  json: Record<string, unknown>;
}

/** cfg.json of an SAE: SAELens's common fields, then the architecture's own. */
export function saelensConfig(arch: SaeArchitecture<any, any>, cfg: BaseSaeConfig): Record<string, unknown> {
  return {
    architecture: arch.saelensArchitecture,
    d_in: cfg.dIn,
    d_sae: cfg.dSae,
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: cfg.applyBDecToInput,
    normalize_activations: 'none',
    reshape_activations: 'none',
    ...arch.toSaelensConfig(cfg),
  };
}

export async function saveSae(
  dir: string,
  arch: SaeArchitecture<any, any>,
  cfg: BaseSaeConfig,
  params: Params,
  extra: { hookName?: string; modelName?: string; provenance?: Record<string, unknown> } = {},
): Promise<void> {
  const json: Record<string, unknown> = {
    ...saelensConfig(arch, cfg),
    metadata: { model_name: extra.modelName ?? null, hook_name: extra.hookName ?? null, sae_lens_training_version: null },
    saelab: { code_version: SAELAB_VERSION, arch: arch.name, ...extra.provenance },
  };
  await saveSaelensFolder(dir, { params: paramsOf(arch, cfg, params, `saveSae: ${arch.name} parameters`), cfg: json });
}

/** The tensors `arch` has, from `params` (extra ones dropped; a missing one is an error naming `where`). */
function paramsOf(arch: SaeArchitecture<any, any>, cfg: BaseSaeConfig, params: Params, where: string): Params {
  const out: Params = {};
  for (const name of Object.keys(arch.paramShapes(cfg))) {
    if (!params[name]) throw new Error(`${where} lack '${name}'`);
    out[name] = params[name]!;
  }
  return out;
}

/** Loads a folder holding an SAE of `arch`, exactly as saved (normalisation must already be folded in). */
export async function loadSaeAs<C extends BaseSaeConfig>(dir: string, arch: SaeArchitecture<C, any>): Promise<{ cfg: C; params: Params }> {
  const { cfg, params } = await readSae(dir, arch, false);
  return { cfg: cfg as C, params };
}

/**
 * Loads an SAELens folder (ours, or one written by SAELens ≥ 3, checked against sae_lens 6.x `saes/*.py` and
 * `loading/pretrained_sae_loaders.py`), with the architecture the registry picks from cfg.json. SAELens-specific
 * conventions are folded into plain weights so every architecture's encode/decode gives SAELens's outputs:
 * - pre-6.0 cfgs: `normalize_activations` may be a bool or null (the architectures read their own older fields);
 * - the architecture's own conventions (`foldSaelens`, `saelensTensorAliases`: TopK's
 *   `rescale_acts_by_decoder_norm`, JumpReLU's relu(threshold) and `log_threshold`);
 * - a `scaling_factor` / `finetuning_scaling_factor` tensor scales latents before decoding: folded into W_dec rows.
 */
export async function loadSae(dir: string): Promise<LoadedSae> {
  return readSae(dir, null, true);
}

/** The one loader behind `loadSae` (`arch` null: from cfg.json; conventions folded) and `loadSaeAs` (exact). */
async function readSae(dir: string, given: SaeArchitecture<any, any> | null, conventions: boolean): Promise<LoadedSae> {
  const { params, cfg: json } = await loadSaelensFolder(dir);
  const where = `${dir}/cfg.json`;
  // Pre-6.0 SAELens wrote a bool (false = none, true = the April-update scaling) or null.
  const rawNorm = json.normalize_activations;
  const norm = rawNorm === undefined || rawNorm === null || rawNorm === false ? 'none' : rawNorm === true ? 'expected_average_only_in' : rawNorm;
  if (norm !== 'none') {
    throw new Error(`${where}: normalize_activations is '${String(norm)}'; only folders with the normalisation folded into the weights ('none') are supported`);
  }
  if (json.normalize_decoder === true) throw new Error(`${where}: normalize_decoder = true is not supported (fold the decoder norms first)`);
  if (given && (json.architecture ?? 'standard') !== given.saelensArchitecture) {
    throw new Error(`${where}: architecture '${String(json.architecture)}' is not ${given.name}'s ('${given.saelensArchitecture}')`);
  }
  const arch = given ?? architectureForSaelens(json);
  const cfg = parseConfig(arch, json, where);
  if (conventions) {
    for (const [name, alias] of Object.entries(arch.saelensTensorAliases ?? {})) {
      const src = params[alias.from];
      if (params[name] || !src) continue;
      params[name] = { data: src.data.map(alias.convert), shape: [...src.shape] };
      delete params[alias.from];
    }
  }
  const shapes = arch.paramShapes(cfg) as Record<string, number[]>;
  for (const name of Object.keys(shapes)) {
    if (!params[name]) throw new Error(`${dir}: ${arch.name} SAE needs tensor '${name}', which sae_weights.safetensors lacks`);
  }
  for (const [name, shape] of Object.entries(shapes)) {
    const t = params[name]!;
    if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) {
      throw new Error(`${dir}: tensor '${name}' has shape [${t.shape.join(', ')}] but a ${arch.name} SAE with d_in=${cfg.dIn}, d_sae=${cfg.dSae} needs [${shape.join(', ')}]`);
    }
  }
  for (const [name, t] of Object.entries(params)) assertFinite(t, `${dir}/sae_weights.safetensors: tensor '${name}'`);
  if (conventions) {
    foldScalingFactor(dir, cfg, params);
    arch.foldSaelens?.(params, cfg, json);
  }
  return { arch, cfg, params, json };
}

/** The architecture's config from cfg.json, with zod's issue list turned into one line per bad field. */
function parseConfig(arch: SaeArchitecture<any, any>, json: Record<string, unknown>, where: string): BaseSaeConfig & Record<string, unknown> {
  try {
    return arch.fromSaelensConfig(json);
  } catch (e) {
    const issues = (e as { issues?: { path: PropertyKey[]; message: string }[] }).issues;
    if (!issues) throw e;
    throw new Error(`${where}: invalid ${arch.saelensArchitecture} config: ${issues.map((i) => `'${i.path.map(String).join('.')}': ${i.message}`).join('; ')}`);
  }
}

/** SAELens's `scaling_factor` / `finetuning_scaling_factor` (latents scaled before decoding), folded into W_dec rows. */
function foldScalingFactor(dir: string, cfg: BaseSaeConfig, params: Params): void {
  const { dIn, dSae } = cfg;
  const scale = params.finetuning_scaling_factor ?? params.scaling_factor;
  if (!scale) return;
  if (scale.data.length !== dSae) throw new Error(`${dir}: scaling factor tensor has ${scale.data.length} entries, want d_sae=${dSae}`);
  const W = params.W_dec!.data;
  for (let i = 0; i < dSae; i++) for (let j = 0; j < dIn; j++) W[i * dIn + j] = W[i * dIn + j]! * scale.data[i]!;
  delete params.finetuning_scaling_factor;
  delete params.scaling_factor;
}

/**
 * What a trained SAE's folder loads as, computed in memory (no write and read-back): for an architecture served
 * as another (BatchTopK → JumpReLU) the served architecture with the config and tensors its folder would hold and
 * its SAELens conventions folded in; otherwise the SAE itself.
 */
export function servedForm(arch: SaeArchitecture<any, any>, cfg: BaseSaeConfig, params: Params): LoadedSae {
  const json = saelensConfig(arch, cfg);
  if (arch.servedAs === undefined) return { arch, cfg: cfg as LoadedSae['cfg'], params, json };
  const served = getArchitecture(arch.servedAs);
  const servedCfg = parseConfig(served, json, `${arch.name} served as ${served.name}`);
  const servedParams = paramsOf(served, servedCfg, params, `${arch.name} served as ${served.name}: parameters`);
  const copy: Params = Object.fromEntries(Object.entries(servedParams).map(([k, t]) => [k, { data: Float32Array.from(t.data), shape: [...t.shape] }]));
  served.foldSaelens?.(copy, servedCfg, json);
  return { arch: served, cfg: servedCfg, params: copy, json };
}
