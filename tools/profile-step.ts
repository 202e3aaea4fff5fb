/**
 * Where a training step's time goes: each GEMM call (shape, ms) and the step's phases (encode, decode, backward,
 * optimiser, stats) from the workspace timer. `npx tsx tools/profile-step.ts topk` (at init sparsity); for a
 * function-level profile run `node --cpu-prof --import tsx tools/bench.ts --arch topk --steps 2`.
 */
import { type SaeContext, Rng, SaeTrainer, Workspace, defaultEngine, defaultSparsityFor, recipeOptions, type GemmEngine } from '@saelab/core';
import { getArchitecture } from '@saelab/harness';

const name = process.argv[2] ?? 'topk';
const [dIn, dSae, batch] = [512, 4096, 4096];
const base = await defaultEngine();
const calls: { label: string; ms: number }[] = [];
const engine: GemmEngine = {
  name: 'timed',
  async gemm(a, b, o = {}) {
    const t = performance.now();
    const r = await base.gemm(a, b, o);
    calls.push({ label: `[${a.shape}]${o.transA ? 'ᵀ' : ''}·[${b.shape}]${o.transB ? 'ᵀ' : ''}${o.bias ? ' + bias' : ''}`, ms: performance.now() - t });
    return r;
  },
};
const arch = getArchitecture(name);
// Sparsity value 32 where it is k (a long run's windows: nothing dead in two steps); λ architectures run at init.
const cfg = arch.configSchema.parse({ dIn, dSae, ...(arch.runConfig?.({ sparsity: 32, batch, totalTokens: 1e11 }) ?? {}) });
const params = arch.init(cfg, new Rng(1));
const workspace = new Workspace();
const ctx: SaeContext = { engine, workspace };
// A few steps of a long run: no resampling event falls in them.
const trainer = new SaeTrainer(arch, cfg, params, { ...recipeOptions(arch, 10, defaultSparsityFor(arch, cfg), cfg), resample: null }, ctx);
const x = { data: new Rng(0).fillNormal(new Float32Array(batch * dIn), 1 / Math.sqrt(dIn)), shape: [batch, dIn] };
await trainer.trainStep(x);
calls.length = 0;
workspace.timer.reset();
const t0 = performance.now();
const { l0 } = await trainer.trainStep(x);
const total = performance.now() - t0;
const gemm = calls.reduce((s, c) => s + c.ms, 0);
for (const c of calls) console.log(`${c.label.padEnd(40)} ${c.ms.toFixed(1)} ms`);
console.log(`phases: ${Object.entries(workspace.timer.totals).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', ')}`);
console.log(`${name} (L0 ${l0.toFixed(0)}): step ${total.toFixed(0)} ms, GEMM ${gemm.toFixed(0)} ms, other ${(total - gemm).toFixed(0)} ms`);
