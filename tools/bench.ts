/**
 * Training throughput per architecture: tokens/s of the full training step (loss, gradients, projection, Adam,
 * renormalisation) at d_in 512, d_sae 4096, batch 4096 by default — the shapes of the PyTorch bar in
 * docs/specs/performance.md — at two sparsities: at init (ReLU/JumpReLU/Gated fire on about half the latents) and at a
 * trained-like L0 ≈ 32 (thresholds / biases set from each latent's pre-activation statistics; TopK: k = 32).
 *
 *   npm run bench -- [--arch topk] [--steps 5] [--warmup 2] [--sparsity init|trained|both] [--mode auto|sparse|dense]
 *                          [--kernels wasm|ts] [--d-in 512] [--d-sae 4096] [--batch 4096] [--k 32]
 *
 * Prints tokens/s, the ratio to the PyTorch bar, GFLOP/s (executed, and "dense-equivalent": the FLOPs of the
 * PyTorch step, which does every product densely), % of the 157 GFLOP/s fp32 peak, peak RSS, RSS growth over the
 * timed steps, the growth of live (reachable after GC) memory over the timed steps with `node --expose-gc`, and the
 * per-phase breakdown. Not a test: numbers depend on the machine and its load; compare
 * ratios measured in one run.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { type SaeArchitecture, type SaeContext, type Params, Rng, SaeTrainer, type SparseMode, Workspace, defaultEngine, defaultSparsityFor, recipeOptions } from '@saelab/core';
import { ARCH_NAMES, getArchitecture } from '@saelab/harness';

const { values } = parseArgs({
  options: {
    arch: { type: 'string', multiple: true },
    steps: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    'd-in': { type: 'string', default: '512' },
    'd-sae': { type: 'string', default: '4096' },
    batch: { type: 'string', default: '4096' },
    k: { type: 'string', default: '32' },
    sparsity: { type: 'string', default: 'both' },
    mode: { type: 'string', default: 'auto' },
    kernels: { type: 'string', default: 'wasm' },
  },
});
/**
 * Bytes reachable after a full GC (JS heap + ArrayBuffers and native memory V8 knows of): the allocation-growth
 * check, which RSS cannot be (V8 and the allocator keep freed pages). Needs `node --expose-gc` (npm run bench).
 */
function liveBytes(): number | null {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return null;
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

const dIn = Number(values['d-in']);
const dSae = Number(values['d-sae']);
const batch = Number(values.batch);
const steps = Number(values.steps);
const warmup = Number(values.warmup);
const targetL0 = Number(values.k);
const mode = values.mode as SparseMode;
const kernels = values.kernels as 'wasm' | 'ts';
const PEAK_GFLOPS = 157;
/**
 * The run the benchmarked configs are built for: sparsity value targetL0 (k where the value is k), and a long
 * run's windows (N_dead = 10M tokens), so no latent counts as dead within the few timed steps.
 */
const LONG_RUN = { sparsity: targetL0, batch, totalTokens: 1e11 };
/** PyTorch SAELens/dictionary_learning-style trainer on this machine (docs/specs/performance.md / issue 6). */
// BatchTopK has no measured PyTorch number: it is compared with TopK's (the same dense work plus a global selection).
const PYTORCH_TOKENS_PER_S: Record<string, number> = { relu: 3000, topk: 3800, jumprelu: 2000, gated: 1600, batchtopk: 3800 };
/** Products per step besides the encoder GEMM: decode, ∂L/∂f, dW_dec, dW_enc (4 unless listed; + Gated's aux decode and its ∂). */
const BACKWARD_PRODUCTS: Record<string, number> = { gated: 6 };

const engine = await defaultEngine();
console.log(`machine: ${os.cpus()[0]?.model} × ${os.cpus().length} cores, load avg ${os.loadavg()[0]!.toFixed(1)}, node ${process.version}`);
console.log(`GEMM engine ${engine.name}; sparse mode ${mode}, kernels ${kernels}`);
console.log(`shape: d_in ${dIn}, d_sae ${dSae}, batch ${batch}; ${warmup} warm-up + ${steps} timed steps\n`);
console.log(
  'arch      sparsity     L0  tokens/s  ms/step  vs PyTorch  GFLOP/s exec (% peak)  dense-eq  RSS MiB (+growth)  live Δ MiB  phases ms: encode decode backward optimiser stats',
);

const rng = new Rng(0);
const x = { data: rng.fillNormal(new Float32Array(batch * dIn), 1 / Math.sqrt(dIn)), shape: [batch, dIn] };

/**
 * Makes each latent fire on ≈ targetL0/d_sae of the rows: the architecture puts its cut (threshold, bias or gate
 * bias: `setFiringCut`) at mean + z·std of the latent's pre-activation on this batch, z the normal quantile of that tail.
 */
async function setTrainedSparsity(arch: SaeArchitecture<any, any>, p: Params): Promise<void> {
  if (!arch.setFiringCut) return; // its sparsity value fixes L0
  const pre = await engine.gemm(x, p.W_enc!); // b_dec = 0 at init, so this is the encoder's pre-activation
  const mean = new Float64Array(dSae);
  const sq = new Float64Array(dSae);
  for (let r = 0; r < batch; r++)
    for (let j = 0; j < dSae; j++) {
      const v = pre.data[r * dSae + j]!;
      mean[j] += v / batch;
      sq[j] += (v * v) / batch;
    }
  const z = normalQuantile(1 - targetL0 / dSae);
  const cut = new Float32Array(dSae);
  for (let j = 0; j < dSae; j++) cut[j] = mean[j]! + z * Math.sqrt(Math.max(0, sq[j]! - mean[j]! ** 2));
  arch.setFiringCut(p, cut);
}

/** Upper-tail inverse standard normal CDF, p close to 1 (Acklam's tail approximation; plenty for picking a threshold). */
function normalQuantile(p: number): number {
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const q = Math.sqrt(-2 * Math.log(1 - p));
  return -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
}

const sparsities = values.sparsity === 'both' ? ['init', 'trained'] : [values.sparsity!];
for (const name of (values.arch as string[] | undefined) ?? ARCH_NAMES) {
  for (const sparsity of sparsities) {
    const arch = getArchitecture(name);
    const fixedL0 = arch.sparsity.forL0Target(targetL0) !== null;
    if (fixedL0 && sparsity === 'init' && sparsities.length > 1) continue; // the sparsity value sets L0: one row is enough
    const cfg = arch.configSchema.parse({ dIn, dSae, ...(arch.runConfig?.(LONG_RUN) ?? {}) });
    const params = arch.init(cfg, new Rng(1));
    if (sparsity === 'trained') await setTrainedSparsity(arch, params);
    const workspace = new Workspace({ mode, kernels });
    const options = recipeOptions(arch, warmup + steps, defaultSparsityFor(arch, cfg));
    options.sparsityWarmupSteps = 0; // time the full step at the final λ
    const ctx: SaeContext = { engine, workspace };
    const trainer = new SaeTrainer(arch, cfg, params, options, ctx);
    for (let i = 0; i < warmup; i++) await trainer.trainStep(x);
    workspace.timer.reset();
    const live0 = liveBytes();
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    let l0 = 0;
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) {
      l0 += (await trainer.trainStep(x)).l0 / steps;
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    const ms = (performance.now() - t0) / steps;
    const growth = process.memoryUsage().rss - rss0;
    const liveGrowth = live0 === null ? null : liveBytes()! - live0;
    const tps = (batch / ms) * 1000;
    const gemm = 2 * batch * dIn * dSae;
    const sparse = l0 <= workspace.maxSparseDensity * dSae && mode !== 'dense';
    const products = BACKWARD_PRODUCTS[name] ?? 4;
    const executed = gemm + products * (sparse || mode === 'sparse' ? 2 * batch * l0 * dIn : gemm);
    const gflops = executed / ms / 1e6;
    const denseEq = ((1 + products) * gemm) / ms / 1e6;
    const ph = workspace.timer.totals;
    const phase = (k: string) => ((ph[k] ?? 0) / steps).toFixed(0).padStart(6);
    console.log(
      `${name.padEnd(9)} ${sparsity.padEnd(8)} ${l0.toFixed(0).padStart(6)} ${tps.toFixed(0).padStart(9)} ${ms.toFixed(0).padStart(8)}` +
        `  ${(name in PYTORCH_TOKENS_PER_S ? `${(tps / PYTORCH_TOKENS_PER_S[name]!).toFixed(2)}×` : 'n/a').padStart(9)}  ${gflops.toFixed(1).padStart(8)} (${((100 * gflops) / PEAK_GFLOPS).toFixed(0).padStart(3)}%)` +
        `  ${denseEq.toFixed(0).padStart(14)}  ${(peak / 2 ** 20).toFixed(0).padStart(7)} (${(growth / 2 ** 20 >= 0 ? '+' : '') + (growth / 2 ** 20).toFixed(0)})` +
        `  ${liveGrowth === null ? '   n/a' : ((liveGrowth / 2 ** 20 >= 0 ? '+' : '') + (liveGrowth / 2 ** 20).toFixed(1)).padStart(6)}` +
        `          ${phase('encode')} ${phase('decode')} ${phase('backward')} ${phase('optimiser')} ${phase('stats')}`,
    );
  }
}
