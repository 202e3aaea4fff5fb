/**
 * Training throughput per architecture: tokens/s of the full training step (loss, gradients, projection, Adam,
 * renormalisation) at d_in 512, d_sae 4096, batch 4096 by default — the shapes of the PyTorch bar in
 * performance.md. Run: `npm run bench -- [--arch topk] [--steps 5] [--d-in 512] [--d-sae 4096] [--batch 4096]`.
 * Not a test: numbers depend on the machine; compare ratios measured in one run.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Rng, SaeTrainer, defaultEngine, recipeOptions } from '@saelab/core';
import { ARCHITECTURES, ARCH_NAMES } from '@saelab/harness';

const { values } = parseArgs({
  options: {
    arch: { type: 'string', multiple: true },
    steps: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    'd-in': { type: 'string', default: '512' },
    'd-sae': { type: 'string', default: '4096' },
    batch: { type: 'string', default: '4096' },
    k: { type: 'string', default: '32' },
  },
});
const dIn = Number(values['d-in']);
const dSae = Number(values['d-sae']);
const batch = Number(values.batch);
const steps = Number(values.steps);
const warmup = Number(values.warmup);
/** PyTorch SAELens/dictionary_learning-style trainer on this machine (performance.md / issue 6). */
const PYTORCH_TOKENS_PER_S: Record<string, number> = { relu: 3000, topk: 3800, jumprelu: 2000, gated: 1600 };

const engine = await defaultEngine();
console.log(`machine: ${os.cpus()[0]?.model} × ${os.cpus().length} cores, node ${process.version}, GEMM engine ${engine.name}`);
console.log(`shape: d_in ${dIn}, d_sae ${dSae}, batch ${batch}; ${warmup} warm-up + ${steps} timed steps\n`);
console.log('arch      tokens/s   ms/step   vs PyTorch   peak RSS MiB');

const rng = new Rng(0);
const x = { data: rng.fillNormal(new Float32Array(batch * dIn), 1 / Math.sqrt(dIn)), shape: [batch, dIn] };
for (const name of (values.arch as string[] | undefined) ?? ARCH_NAMES) {
  const arch = ARCHITECTURES[name as keyof typeof ARCHITECTURES];
  const cfg = arch.configSchema.parse({ dIn, dSae, ...(name === 'topk' ? { k: Number(values.k) } : {}) });
  const params = arch.init(cfg, new Rng(1));
  // λ chosen so JumpReLU/Gated/ReLU sit at a moderate L0 on this random data is not needed for timing dense paths.
  const trainer = new SaeTrainer(arch, cfg, params, recipeOptions(arch, warmup + steps, arch.recipe.defaultSparsity), { engine });
  for (let i = 0; i < warmup; i++) await trainer.trainStep(x);
  let peak = process.memoryUsage().rss;
  const t0 = performance.now();
  let l0 = 0;
  for (let i = 0; i < steps; i++) {
    l0 = (await trainer.trainStep(x)).l0;
    peak = Math.max(peak, process.memoryUsage().rss);
  }
  const ms = (performance.now() - t0) / steps;
  const tps = (batch / ms) * 1000;
  const ratio = tps / PYTORCH_TOKENS_PER_S[name]!;
  console.log(
    `${name.padEnd(9)} ${tps.toFixed(0).padStart(8)}   ${ms.toFixed(0).padStart(7)}   ${ratio.toFixed(2).padStart(8)}×   ${(peak / 2 ** 20).toFixed(0).padStart(10)}   (L0 ${l0.toFixed(1)})`,
  );
}
