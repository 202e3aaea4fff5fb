/**
 * One architecture's SAE as an SAELens folder, for code that imports a single `@saelab/sae-*` package:
 * `saveSae` writes `sae_weights.safetensors` + `cfg.json` (SAELens fields, the architecture's own fields, our
 * provenance under `saelab`); `loadSaeAs` reads one back for a known architecture. (`@saelab/harness`'s `loadSae`
 * also picks the architecture from cfg.json and folds older SAELens conventions into the weights.)
 */
import { loadSaelensFolder, saveSaelensFolder } from '../io/checkpoint.js';
import type { BaseSaeConfig, SaeArchitecture } from './contract.js';
import type { Params } from '../tensor.js';

export const SAELAB_VERSION = '0.1.0';

export async function saveSae(
  dir: string,
  arch: SaeArchitecture<any, any>,
  cfg: BaseSaeConfig,
  params: Params,
  extra: { hookName?: string; modelName?: string; provenance?: Record<string, unknown> } = {},
): Promise<void> {
  const json: Record<string, unknown> = {
    architecture: arch.saelensArchitecture,
    d_in: cfg.dIn,
    d_sae: cfg.dSae,
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: cfg.applyBDecToInput,
    normalize_activations: 'none',
    reshape_activations: 'none',
    ...arch.toSaelensConfig(cfg),
    metadata: { model_name: extra.modelName ?? null, hook_name: extra.hookName ?? null, sae_lens_training_version: null },
    saelab: { code_version: SAELAB_VERSION, arch: arch.name, ...extra.provenance },
  };
  const weights: Params = {};
  for (const name of Object.keys(arch.paramShapes(cfg))) {
    if (!params[name]) throw new Error(`saveSae: ${arch.name} parameters lack '${name}'`);
    weights[name] = params[name]!;
  }
  await saveSaelensFolder(dir, { params: weights, cfg: json });
}

/** Loads a folder holding an SAE of `arch` (exact weights; normalisation must already be folded in). */
export async function loadSaeAs<C extends BaseSaeConfig>(dir: string, arch: SaeArchitecture<C, any>): Promise<{ cfg: C; params: Params }> {
  const { params, cfg: json } = await loadSaelensFolder(dir);
  if ((json.architecture ?? 'standard') !== arch.saelensArchitecture) {
    throw new Error(`${dir}/cfg.json: architecture '${String(json.architecture)}' is not ${arch.name}'s ('${arch.saelensArchitecture}')`);
  }
  if ((json.normalize_activations ?? 'none') !== 'none') {
    throw new Error(`${dir}/cfg.json: normalize_activations is '${String(json.normalize_activations)}'; only folded ('none') folders load exactly`);
  }
  const cfg = arch.fromSaelensConfig(json);
  for (const [name, shape] of Object.entries(arch.paramShapes(cfg))) {
    const t = params[name];
    if (!t) throw new Error(`${dir}: ${arch.name} SAE needs tensor '${name}'`);
    if (t.shape.join() !== shape.join()) throw new Error(`${dir}: tensor '${name}' has shape [${t.shape}] but ${arch.name} needs [${shape}]`);
  }
  return { cfg, params };
}
