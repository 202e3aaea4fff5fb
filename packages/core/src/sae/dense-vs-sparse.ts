/**
 * Dense-vs-sparse agreement for an architecture: runs `lossAndGrads` on the dense reference path (densify, GEMM
 * engine) and on the sparse kernels, and reports the worst relative difference of every output. Used by each
 * architecture's tests; also handy when ablating a kernel.
 */
import type { BaseSaeConfig, SaeArchitecture, SaeContext } from './contract.js';
import type { Params, Tensor } from '../tensor.js';
import { Workspace, type WorkspaceOptions } from '../fast/workspace.js';

/** max |a − b| / max(1e-3·max|b|, |b|) over elements: relative, with a floor so near-zero entries do not dominate. */
export function relativeDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relativeDifference: lengths ${a.length} and ${b.length}`);
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  const floor = Math.max(1e-3 * scale, 1e-12);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(floor, Math.abs(b[i]!)));
  return worst;
}

/**
 * Worst relative difference between the dense path and the sparse path (with `sparse` options, e.g. kernels 'ts')
 * for the loss, x̂, the latents and every gradient. `makeState` gives each run its own fresh training state.
 */
export async function densePathDifferences<C extends BaseSaeConfig, S>(
  arch: SaeArchitecture<C, S>,
  cfg: C,
  params: Params,
  x: Tensor,
  lambda: number,
  engine: SaeContext['engine'],
  makeState: () => S,
  sparse: WorkspaceOptions = {},
): Promise<Record<string, number>> {
  const run = (options: WorkspaceOptions) => {
    const ctx = { engine, workspace: new Workspace(options) };
    return arch.lossAndGrads(params, x, cfg, lambda, makeState(), ctx);
  };
  const dense = await run({ mode: 'dense' });
  // Copy out of the dense run's buffers before the sparse run (different workspaces, but be explicit).
  const denseGrads = Object.fromEntries(Object.entries(dense.grads).map(([k, v]) => [k, Float32Array.from(v.data)]));
  const sp = await run({ ...sparse, mode: 'sparse' });
  const out: Record<string, number> = {
    loss: relativeDifference([sp.loss], [dense.loss]),
    xHat: relativeDifference(sp.xHat.data, dense.xHat.data),
    latents: relativeDifference(sp.latents.data, dense.latents.data),
  };
  for (const [k, v] of Object.entries(denseGrads)) out[`grad ${k}`] = relativeDifference(sp.grads[k]!.data, v);
  return out;
}
