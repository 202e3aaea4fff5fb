/** The architectures by CLI name: the four of the comparison, plus BatchTopK (in @saelab/sae-topk). Adding another: implement SaeArchitecture in a package, list it here, and see docs/design.md for the other places that name it. */
import type { ArchName, SaeArchitecture, SaelensArchitecture } from '@saelab/core';
import { gated } from '@saelab/sae-gated';
import { jumpRelu } from '@saelab/sae-jumprelu';
import { relu } from '@saelab/sae-relu';
import { batchTopK, topK } from '@saelab/sae-topk';

export const ARCHITECTURES: Record<ArchName, SaeArchitecture<any, any>> = { relu, gated, topk: topK, jumprelu: jumpRelu, batchtopk: batchTopK };
export const ARCH_NAMES = Object.keys(ARCHITECTURES) as ArchName[];
/** Architectures whose sparsity knob is k (an exact L0 target, no λ calibration): topk, batchtopk. */
export const K_ARCH_NAMES = ARCH_NAMES.filter((a) => ARCHITECTURES[a].sparsityKnob === 'k');
/**
 * The architecture that loads each SAELens `architecture`. BatchTopK is saved as a JumpReLU folder (its inference
 * form), so a 'jumprelu' folder loads as JumpReLU whichever of the two trained it.
 */
const BY_SAELENS_ARCHITECTURE: Record<SaelensArchitecture, SaeArchitecture<any, any>> = { standard: relu, gated, topk: topK, jumprelu: jumpRelu };

export function getArchitecture(name: string): SaeArchitecture<any, any> {
  const arch = ARCHITECTURES[name as ArchName];
  if (!arch) throw new Error(`unknown architecture '${name}' (choose one of ${ARCH_NAMES.join(', ')})`);
  return arch;
}

/**
 * Architecture from an SAELens cfg.json: `architecture`, or for pre-6.0 folders `architecture: 'standard'` (or none)
 * with `activation_fn_str` (renamed `activation_fn` by SAELens's loader) 'topk'.
 */
export function architectureFromSaelens(cfg: Record<string, unknown>): SaeArchitecture<any, any> {
  const a = cfg.architecture ?? 'standard';
  const fn = cfg.activation_fn_str ?? cfg.activation_fn ?? 'relu';
  if (a === 'standard' && fn === 'topk') return topK;
  if (a === 'standard' && fn !== 'relu') throw new Error(`cfg.json: activation function '${String(fn)}' is not supported (supported: relu, topk)`);
  const known = Object.keys(BY_SAELENS_ARCHITECTURE);
  if (typeof a !== 'string' || !known.includes(a)) throw new Error(`cfg.json: architecture '${String(a)}' is not supported (supported: ${known.join(', ')})`);
  return BY_SAELENS_ARCHITECTURE[a as SaelensArchitecture];
}
