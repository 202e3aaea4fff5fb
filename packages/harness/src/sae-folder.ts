/**
 * Trained SAEs on disk as SAELens folders: weights in raw activation space (normalisation folded in), cfg.json with
 * SAELens's fields plus our provenance block under `saelab`.
 */
import type { BaseSaeConfig, Params, SaeArchitecture } from '@saelab/core';
import { loadSaelensFolder, saveSaelensFolder } from '@saelab/core';
import { architectureFromSaelens } from './registry.js';

export interface LoadedSae {
  arch: SaeArchitecture<any, any>;
  cfg: BaseSaeConfig & Record<string, unknown>;
  params: Params;
  /** The whole cfg.json. */
  json: Record<string, unknown>;
}

export const CODE_VERSION = '0.1.0';

export async function loadSae(dir: string): Promise<LoadedSae> {
  const { params, cfg: json } = await loadSaelensFolder(dir);
  const norm = json.normalize_activations ?? 'none';
  if (norm !== 'none') {
    throw new Error(
      `${dir}/cfg.json: normalize_activations is '${String(norm)}'; only folders with the normalisation folded into the weights ('none') are supported`,
    );
  }
  // Older SAELens TopK folders keep k under activation_fn_kwargs.
  const kwargs = (json.activation_fn_kwargs ?? {}) as Record<string, unknown>;
  const arch = architectureFromSaelens(json);
  const cfg = arch.fromSaelensConfig({ ...json, k: json.k ?? kwargs.k });
  for (const name of Object.keys(arch.paramShapes(cfg))) {
    if (!params[name]) throw new Error(`${dir}: ${arch.name} SAE needs tensor '${name}', which sae_weights.safetensors lacks`);
  }
  return { arch, cfg, params, json };
}

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
    saelab: { code_version: CODE_VERSION, arch: arch.name, ...extra.provenance },
  };
  const shapes = arch.paramShapes(cfg);
  const weights: Params = {};
  for (const name of Object.keys(shapes)) weights[name] = params[name]!;
  await saveSaelensFolder(dir, { params: weights, cfg: json });
}
