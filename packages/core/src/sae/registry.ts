/**
 * The open registry of SAE architectures. Each architecture registers itself when its package is imported
 * (`defineSae` does it), so the CLI's choices, the sweep config's enum and the SAELens loader all derive from
 * what is registered: adding an architecture is adding a package and importing it once (harness/src/registry.ts).
 */
import type { SaeArchitecture } from './contract.js';

type AnyArchitecture = SaeArchitecture<any, any, any>;
const byName = new Map<string, AnyArchitecture>();

/** Adds an architecture; registering another one under a taken name is an error (the same object again is a no-op). */
export function registerArchitecture<A extends AnyArchitecture>(arch: A): A {
  if (!/^[a-z][a-z0-9-]*$/.test(arch.name)) throw new Error(`architecture name '${arch.name}': use lower-case letters, digits and '-'`);
  const had = byName.get(arch.name);
  if (had && had !== arch) throw new Error(`two architectures are registered as '${arch.name}'`);
  byName.set(arch.name, arch);
  return arch;
}

/** Every registered architecture, in registration (import) order. */
export function registeredArchitectures(): SaeArchitecture<any, any>[] {
  return [...byName.values()];
}

export function architectureNames(): string[] {
  return [...byName.keys()];
}

export function getArchitecture(name: string): SaeArchitecture<any, any> {
  const arch = byName.get(name);
  if (!arch) throw new Error(`unknown architecture '${name}' (choose one of ${architectureNames().join(', ')})`);
  return arch;
}

/** The SAELens `activation_fn_str` of a cfg.json (renamed `activation_fn` by SAELens's loader; default relu). */
export const saelensActivationFn = (json: Record<string, unknown>): unknown => json.activation_fn_str ?? json.activation_fn ?? 'relu';

/** Whether `json`'s `architecture` (default 'standard', as SAELens < 6 wrote none) is `name`. */
export const saelensArchitectureIs = (json: Record<string, unknown>, name: string): boolean => (json.architecture ?? 'standard') === name;

/**
 * The registered architecture that loads a cfg.json: the first whose `readsSaelens` accepts it (default: the
 * `architecture` field matches). Architectures served as another one never claim a folder: theirs loads as that one.
 */
export function architectureForSaelens(json: Record<string, unknown>): SaeArchitecture<any, any> {
  const loaders = registeredArchitectures().filter((a) => a.servedAs === undefined);
  const reads = (a: SaeArchitecture<any, any>) => (a.readsSaelens ? a.readsSaelens(json) : saelensArchitectureIs(json, a.saelensArchitecture));
  const arch = loaders.find(reads);
  if (arch) return arch;
  const name = json.architecture ?? 'standard';
  const known = [...new Set(loaders.map((a) => a.saelensArchitecture))];
  if (typeof name === 'string' && known.includes(name)) {
    throw new Error(`cfg.json: architecture '${name}' with activation function '${String(saelensActivationFn(json))}' is not supported`);
  }
  throw new Error(`cfg.json: architecture '${String(name)}' is not supported (supported: ${known.join(', ')})`);
}
