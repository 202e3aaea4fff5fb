/**
 * Training throughput of the LM at the spec's performance shape (docs/specs/performance.md, "The bar for Longhorn training"):
 * d_model 128, 4 layers, d_state 16, expand 2, sequence 256, batch 16, vocabulary 4096, AdamW — full steps
 * (forward, backward, clipping, optimiser). Reference: a PyTorch Longhorn whose scan loops over time, ~780 tok/s.
 *
 *   npx tsx packages/ssm-longhorn/bench/throughput.ts [--variants longhorn-diag,longhorn-exact,mamba] [--steps 5]
 *     [--simd 1|0] [--out throughput]
 *
 * `--simd 0` runs the TypeScript reference kernels instead of the WebAssembly SIMD ones (SAELAB_LONGHORN_SIMD=0).
 * Reports wall-clock tokens/s and tokens per CPU-second of this process (the machine is shared, so wall time
 * depends on other load; the 1-minute load average is recorded). Writes results/<out>.{json,md}.
 */
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Rng, clipGradNorm, createOptimizer, defaultEngine, writeFileAtomic } from '@saelab/core';
import { LonghornLM, type Transition, modelStats, nextTokenTargets, noDecay, scanThreads, setSimdKernels } from '../src/index.js';

const { values: a } = parseArgs({
  options: {
    variants: { type: 'string', default: 'longhorn-diag,longhorn-exact,mamba' },
    steps: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    batch: { type: 'string', default: '16' },
    seqLen: { type: 'string', default: '256' },
    simd: { type: 'string', default: '1' },
    out: { type: 'string', default: 'throughput' },
  },
});
setSimdKernels(a.simd !== '0');
const B = Number(a.batch);
const L = Number(a.seqLen);
const shape = { vocabSize: 4096, dModel: 128, nLayers: 4, dState: 16, expand: 2 };
const engine = await defaultEngine();
const rows = [];
for (const variant of a.variants!.split(',') as Transition[]) {
  const lm = LonghornLM.create({ ...shape, variant }, 0, engine);
  const opt = createOptimizer({ kind: 'adamw', lr: 1e-3, weightDecay: 0.1 }, lm.params, { noDecay });
  const rng = new Rng(1);
  const tokens = Int32Array.from({ length: B * L }, () => rng.int(shape.vocabSize));
  const targets = nextTokenTargets(tokens, B, L);
  const step = async () => {
    const { grads } = await lm.lossAndGrad(tokens, targets, B, L);
    clipGradNorm(grads, 1);
    opt.step(lm.params, grads);
  };
  for (let i = 0; i < Number(a.warmup); i++) await step();
  const load0 = loadavg()[0]!;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const n = Number(a.steps);
  for (let i = 0; i < n; i++) await step();
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const cpuSec = (cpu.user + cpu.system) / 1e6;
  const row = {
    variant, ...shape, seqLen: L, batch: B, steps: n, engine: engine.name, simd: a.simd !== '0', scanThreads: scanThreads(a.simd !== '0' ? 'simd' : 'js'),
    params: modelStats(lm.config).params,
    tokensPerSecWall: (n * B * L) / wall,
    tokensPerCpuSec: (n * B * L) / cpuSec,
    loadAvg1m: Number(((load0 + loadavg()[0]!) / 2).toFixed(2)),
  };
  console.log(`${variant}: ${row.tokensPerSecWall.toFixed(0)} tok/s wall, ${row.tokensPerCpuSec.toFixed(0)} tok per CPU-s (load ${row.loadAvg1m})`);
  rows.push(row);
}
const machine = `${cpus().length}× ${cpus()[0]?.model ?? 'cpu'} (shared)`;
const dir = join(import.meta.dirname, '..', 'results');
await writeFileAtomic(join(dir, `${a.out}.json`), JSON.stringify({ machine, referencePyTorchTokPerSec: 780, rows }, null, 2) + '\n');
await writeFileAtomic(
  join(dir, `${a.out}.md`),
  [
    '# LM training throughput',
    '',
    `Shape: d_model 128, 4 layers, d_state 16, expand 2, seq ${L}, batch ${B}, vocab 4096, AdamW, full steps. Machine: ${machine}.`,
    `Kernels: ${a.simd !== '0' ? 'WebAssembly SIMD (scan, block elementwise ops, cross-entropy)' : 'TypeScript reference loops (--simd 0)'}; GEMMs: ${engine.name}; scan threads: ${scanThreads(a.simd !== '0' ? 'simd' : 'js')}.`,
    'Reference (docs/specs/performance.md): PyTorch Longhorn with a time-loop scan, ~780 tok/s on this machine.',
    '',
    '| variant | params | tok/s (wall) | tok per CPU-s | × reference (wall) | load avg |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.variant} | ${r.params} | ${r.tokensPerSecWall.toFixed(0)} | ${r.tokensPerCpuSec.toFixed(0)} | ${(r.tokensPerSecWall / 780).toFixed(2)} | ${r.loadAvg1m} |`),
    '',
  ].join('\n'),
);
