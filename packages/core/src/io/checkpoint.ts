/**
 * Checkpoints. (1) SAELens-compatible folders: `sae_weights.safetensors` (float32) + `cfg.json`, replaced
 * atomically as a whole. (2) The training-state file for exact resume: parameters, optimiser slots and a JSON blob
 * (RNG state, schedule and data position, ...) in one safetensors file, written atomically.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { assertFinite, type Params, type Tensor } from '../tensor.js';
import { replaceDirAtomic, writeFileAtomic } from './atomic.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';

export const SAE_WEIGHTS_FILE = 'sae_weights.safetensors';
export const SAE_CFG_FILE = 'cfg.json';

/** An SAELens folder's contents. `cfg` is kept whole (unknown keys included) so folders round-trip. */
export interface SaelensFolder {
  params: Params;
  cfg: Record<string, unknown>;
}

/** The cfg.json fields we rely on; everything else passes through untouched. */
const SaelensCfgCore = z.looseObject({
  d_in: z.number().int().positive(),
  d_sae: z.number().int().positive(),
});

/** Expected shapes of the standard SAELens tensor names ('in' = d_in, 'sae' = d_sae). Others are not checked. */
const KNOWN_SHAPES: Record<string, ('in' | 'sae')[]> = {
  W_enc: ['in', 'sae'],
  W_dec: ['sae', 'in'],
  b_enc: ['sae'],
  b_dec: ['in'],
  threshold: ['sae'],
  b_gate: ['sae'],
  b_mag: ['sae'],
  r_mag: ['sae'],
};

function checkCfg(cfg: unknown, where: string): { d_in: number; d_sae: number } {
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) throw new Error(`${where}: cfg must be a JSON object`);
  const r = SaelensCfgCore.safeParse(cfg);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new Error(`${where}: cfg field '${issue.path.join('.')}' is invalid: ${issue.message}`);
  }
  return r.data;
}

function checkShapes(params: Params, dims: { d_in: number; d_sae: number }, where: string): void {
  for (const name of ['W_enc', 'W_dec', 'b_dec']) {
    if (params[name] === undefined) throw new Error(`${where}: missing tensor '${name}' (have: ${Object.keys(params).join(', ') || 'none'})`);
  }
  for (const [name, t] of Object.entries(params)) {
    const spec = KNOWN_SHAPES[name];
    if (spec === undefined) continue;
    const want = spec.map((s) => (s === 'in' ? dims.d_in : dims.d_sae));
    if (t.shape.length !== want.length || t.shape.some((v, i) => v !== want[i])) {
      throw new Error(
        `${where}: tensor '${name}' has shape [${t.shape.join(', ')}] but cfg d_in=${dims.d_in}, d_sae=${dims.d_sae} needs [${want.join(', ')}]`,
      );
    }
  }
}

/**
 * Writes (or replaces) an SAELens folder: float32 weights + pretty cfg.json, built in a temp sibling and swapped
 * in. Checks the cfg's d_in/d_sae against the tensors and refuses non-finite weights.
 */
export async function saveSaelensFolder(dir: string, folder: SaelensFolder): Promise<void> {
  const dims = checkCfg(folder.cfg, `saveSaelensFolder(${dir})`);
  checkShapes(folder.params, dims, `saveSaelensFolder(${dir})`);
  for (const [name, t] of Object.entries(folder.params)) assertFinite(t, `saveSaelensFolder(${dir}): ${name}`);
  const weights = encodeSafetensors(folder.params);
  const cfgText = JSON.stringify(folder.cfg, null, 2) + '\n';
  await replaceDirAtomic(dir, async (tmp) => {
    await writeFileAtomic(join(tmp, SAE_WEIGHTS_FILE), weights);
    await writeFileAtomic(join(tmp, SAE_CFG_FILE), cfgText);
  });
}

async function readRequired(path: string, dir: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`${dir}: missing ${path.slice(dir.length + 1)} (an SAELens folder holds ${SAE_WEIGHTS_FILE} and ${SAE_CFG_FILE})`);
    }
    throw e;
  }
}

/** Loads an SAELens folder (weights of any float dtype come back float32), checking shapes against cfg.json. */
export async function loadSaelensFolder(dir: string): Promise<SaelensFolder> {
  const st = await stat(dir).catch(() => null);
  if (st === null) throw new Error(`${dir}: no such folder`);
  if (!st.isDirectory()) throw new Error(`${dir}: not a folder (expected an SAELens folder with ${SAE_WEIGHTS_FILE} and ${SAE_CFG_FILE})`);
  const cfgPath = join(dir, SAE_CFG_FILE);
  const cfgText = (await readRequired(cfgPath, dir)).toString('utf8');
  let cfg: unknown;
  try {
    cfg = JSON.parse(cfgText);
  } catch (e) {
    throw new Error(`${cfgPath}: invalid JSON (${(e as Error).message})`);
  }
  const dims = checkCfg(cfg, cfgPath);
  const weightsPath = join(dir, SAE_WEIGHTS_FILE);
  const { tensors } = decodeSafetensors(await readRequired(weightsPath, dir), weightsPath);
  checkShapes(tensors, dims, weightsPath);
  return { params: tensors, cfg: cfg as Record<string, unknown> };
}

// ---------------------------------------------------------------------------------------------------------------
// Training state

/** Everything needed to resume training exactly. `optimizer` matches the optimiser's getState()/setState(). */
export interface TrainingState {
  step: number;
  params: Params;
  optimizer: { step: number; slots: Record<string, Params> };
  /** Free-form JSON: RNG state, schedule position, data-stream position, config... NaN/±Inf survive the trip. */
  json: Record<string, unknown>;
}

const STATE_FORMAT = 'saelab-training-state';
const STATE_VERSION = '1';

/** JSON.stringify turns NaN/±Inf into null (e.g. the Rng's "no spare normal" NaN); tag them instead. */
function jsonReplacer(_k: string, v: unknown): unknown {
  return typeof v === 'number' && !Number.isFinite(v) ? { __nonfinite__: String(v) } : v;
}
function jsonReviver(_k: string, v: unknown): unknown {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === '__nonfinite__') return Number((v as { __nonfinite__: string }).__nonfinite__);
  }
  return v;
}

function checkStep(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Error(`${what} must be a non-negative integer, got ${v}`);
  return v;
}

/** Writes the training state atomically as one safetensors file: `param.<name>`, `opt.<slot>.<name>`, JSON in metadata. */
export async function saveTrainingState(path: string, state: TrainingState): Promise<void> {
  checkStep(state.step, 'saveTrainingState: step');
  checkStep(state.optimizer.step, 'saveTrainingState: optimizer.step');
  const tensors: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(state.params)) tensors[`param.${name}`] = t;
  for (const [slot, params] of Object.entries(state.optimizer.slots)) {
    // The slot name ends at the first '.', so it may not contain one (parameter names may).
    if (slot === '' || slot.includes('.')) throw new Error(`saveTrainingState: optimizer slot name '${slot}' must be non-empty without '.'`);
    for (const [name, t] of Object.entries(params)) tensors[`opt.${slot}.${name}`] = t;
  }
  const metadata = {
    format: STATE_FORMAT,
    version: STATE_VERSION,
    step: String(state.step),
    optimizer_step: String(state.optimizer.step),
    slots: JSON.stringify(Object.keys(state.optimizer.slots)),
    json: JSON.stringify(state.json, jsonReplacer),
  };
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** Reads a file written by {@link saveTrainingState}; tensors come back bit-exact. */
export async function loadTrainingState(path: string): Promise<TrainingState> {
  const { tensors, metadata } = decodeSafetensors(await readFile(path), path);
  if (metadata.format !== STATE_FORMAT) throw new Error(`${path}: not a saelab training-state file (metadata.format=${metadata.format})`);
  if (metadata.version !== STATE_VERSION) throw new Error(`${path}: training-state version ${metadata.version} is not supported (want ${STATE_VERSION})`);
  const parse = (key: string): unknown => {
    try {
      return JSON.parse(metadata[key] ?? '', jsonReviver);
    } catch (e) {
      throw new Error(`${path}: metadata '${key}' is not valid JSON (${(e as Error).message})`);
    }
  };
  const step = checkStep(Number(metadata.step), `${path}: metadata step`);
  const optStep = checkStep(Number(metadata.optimizer_step), `${path}: metadata optimizer_step`);
  const slotNames = parse('slots');
  if (!Array.isArray(slotNames) || !slotNames.every((s) => typeof s === 'string')) throw new Error(`${path}: metadata 'slots' must be a list of names`);
  const json = parse('json');
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${path}: metadata 'json' must be an object`);

  const params: Params = {};
  const slots: Record<string, Params> = Object.fromEntries(slotNames.map((s: string) => [s, {}]));
  for (const [key, t] of Object.entries(tensors)) {
    if (key.startsWith('param.')) params[key.slice(6)] = t;
    else if (key.startsWith('opt.')) {
      const dot = key.indexOf('.', 4);
      const slot = key.slice(4, dot);
      if (dot < 0 || slots[slot] === undefined) throw new Error(`${path}: tensor '${key}' names an unknown optimizer slot`);
      slots[slot]![key.slice(dot + 1)] = t;
    } else throw new Error(`${path}: unexpected tensor '${key}' (expected param.* or opt.<slot>.*)`);
  }
  return { step, params, optimizer: { step: optStep, slots }, json: json as Record<string, unknown> };
}
