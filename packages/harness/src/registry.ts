/** The four architectures by CLI name. Adding a fifth: implement SaeArchitecture in a package and list it here. */
import type { ArchName, SaeArchitecture } from '@saelab/core';
import { gated } from '@saelab/sae-gated';
import { jumpRelu } from '@saelab/sae-jumprelu';
import { relu } from '@saelab/sae-relu';
import { topK } from '@saelab/sae-topk';

export const ARCHITECTURES: Record<ArchName, SaeArchitecture<any, any>> = { relu, gated, topk: topK, jumprelu: jumpRelu };
export const ARCH_NAMES = Object.keys(ARCHITECTURES) as ArchName[];

export function getArchitecture(name: string): SaeArchitecture<any, any> {
  const arch = ARCHITECTURES[name as ArchName];
  if (!arch) throw new Error(`unknown architecture '${name}' (choose one of ${ARCH_NAMES.join(', ')})`);
  return arch;
}

/** Architecture from an SAELens cfg.json (`architecture`, or the older `activation_fn_str: 'topk'`). */
export function architectureFromSaelens(cfg: Record<string, unknown>): SaeArchitecture<any, any> {
  const a = cfg.architecture ?? 'standard';
  if (a === 'standard' && cfg.activation_fn_str === 'topk') return topK;
  const found = Object.values(ARCHITECTURES).find((x) => x.saelensArchitecture === a);
  if (!found) throw new Error(`cfg.json: architecture '${String(a)}' is not supported (supported: standard, gated, topk, jumprelu)`);
  return found;
}
