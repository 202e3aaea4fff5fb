/** Where a training step's time goes: GEMM time (per call shape) vs everything else. `npx tsx tools/profile-step.ts topk` */
import { Rng, SaeTrainer, defaultEngine, recipeOptions, type GemmEngine } from '@saelab/core';
import { ARCHITECTURES } from '@saelab/harness';

const name = (process.argv[2] ?? 'topk') as keyof typeof ARCHITECTURES;
const [dIn, dSae, batch] = [512, 4096, 4096];
const base = await defaultEngine();
const calls: { label: string; ms: number }[] = [];
const engine: GemmEngine = {
  name: 'timed',
  async gemm(a, b, o = {}) {
    const t = performance.now();
    const r = await base.gemm(a, b, o);
    calls.push({ label: `[${a.shape}]${o.transA ? 'ᵀ' : ''}·[${b.shape}]${o.transB ? 'ᵀ' : ''}`, ms: performance.now() - t });
    return r;
  },
};
const arch = ARCHITECTURES[name];
const cfg = arch.configSchema.parse({ dIn, dSae, ...(name === 'topk' ? { k: 32 } : {}) });
const params = arch.init(cfg, new Rng(1));
const trainer = new SaeTrainer(arch, cfg, params, recipeOptions(arch, 10, arch.recipe.defaultSparsity), { engine });
const x = { data: new Rng(0).fillNormal(new Float32Array(batch * dIn), 1 / Math.sqrt(dIn)), shape: [batch, dIn] };
await trainer.trainStep(x);
calls.length = 0;
const t0 = performance.now();
await trainer.trainStep(x);
const total = performance.now() - t0;
const gemm = calls.reduce((s, c) => s + c.ms, 0);
for (const c of calls) console.log(`${c.label.padEnd(36)} ${c.ms.toFixed(1)} ms`);
console.log(`${name}: step ${total.toFixed(0)} ms, GEMM ${gemm.toFixed(0)} ms, other ${(total - gemm).toFixed(0)} ms`);
