/**
 * Training throughput per architecture: tokens/s of the full training step (loss, gradients, projection, Adam,
 * renormalisation) at d_in 512, d_sae 4096, batch 4096 by default — the shapes of the PyTorch bar in
 * docs/specs/performance.md — at two sparsities: at init (ReLU/JumpReLU/Gated fire on about half the latents) and at a
 * trained-like L0 ≈ 32 (thresholds / biases set from each latent's pre-activation statistics; TopK: k = 32).
 *
 *   npm run bench -- [--arch topk] [--steps 5] [--warmup 2] [--sparsity init|trained|both] [--mode auto|sparse|dense]
 *                          [--kernels wasm|ts] [--d-in 512] [--d-sae 4096] [--batch 4096] [--k 32]
 *                          [--peers all|manual|autograd|none] [--peer-steps 5]
 *
 * The peers are measured in the same run (tools/peers/: PyTorch via Debian's python3-torch, threads = cores; skipped
 * with a message when torch is absent): for each row the PyTorch steps run right before ours, under the same load —
 * the dense steps (autograd, SAELens-style, and hand-written; the faster is "the fastest dense step") and, for TopK,
 * sparsify's sparse formulation. The fp32 GEMM peak is measured too (ORT and torch, at the encoder's shape and at
 * 2048³; the best is "peak"), never assumed.
 *
 * Prints tokens/s, the ratios to the fastest dense peer and to the sparse peer, whether the goals of issue 15 are met
 * (trained sparsity: ≥ 3× dense, TopK ≥ 2× sparse; init: ≥ 1.2× dense), GFLOP/s and % of the measured peak per phase
 * (executed FLOPs: the encoder GEMM, and the decode / backward products at the measured L0, sparse or dense as run),
 * "dense-equivalent" GFLOP/s (the FLOPs of the dense step, which does every product densely), peak RSS, RSS growth
 * over the timed steps, and the growth of live (reachable after GC) memory with `node --expose-gc`. Not a test:
 * numbers depend on the machine and its load; compare ratios measured in one run.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { DENSE_VARIANTS, type PeerStepResult, Peers, SPARSE_VARIANT, engineGemmPeak } from './peers/peers.js';
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
    peers: { type: 'string', default: 'all' },
    'peer-steps': { type: 'string' },
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
const peerSteps = Number(values['peer-steps'] ?? steps);
/** Products per step besides the encoder GEMM, by phase: decode (x̂; Gated also its aux x̂) and backward (∂L/∂f,
 * dW_dec, dW_enc; Gated also ∂aux/∂ReLU(π_gate)). JumpReLU's window dots and TopK's AuxK are not counted. */
const PRODUCTS: Record<string, { decode: number; backward: number }> = { gated: { decode: 2, backward: 4 } }; // others: 1 + 3
/**
 * The run the benchmarked configs are built for: sparsity value targetL0 (k where the value is k), and a long
 * run's windows (N_dead = 10M tokens), so no latent counts as dead within the few timed steps.
 */
const LONG_RUN = { sparsity: targetL0, batch, totalTokens: 1e11 };
/** Issue 15's goals: ratio to the fastest dense PyTorch step by sparsity, and TopK's to the sparse formulation. */
const GOAL_DENSE = { init: 1.2, trained: 3 } as const;
const GOAL_SPARSE = 2;

const engine = await defaultEngine();
console.log(`machine: ${os.cpus()[0]?.model} × ${os.cpus().length} cores, load avg ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, node ${process.version}`);
console.log(`GEMM engine ${engine.name}; sparse mode ${mode}, kernels ${kernels}`);
console.log(`shape: d_in ${dIn}, d_sae ${dSae}, batch ${batch}; ours ${warmup} warm-up + ${steps} timed steps, peers ${warmup} + ${peerSteps}`);

const peerVariants = values.peers === 'all' ? [...DENSE_VARIANTS] : values.peers === 'none' ? [] : values.peers!.split(',');
const started = peerVariants.length > 0 ? await Peers.start() : { skipped: 'PyTorch peers off (--peers none)' };
const peers = 'peers' in started ? started.peers : null;
if ('skipped' in started) console.log(started.skipped);
else console.log(`peers: PyTorch ${started.info.torch} (Python ${started.info.python}, ${started.info.threads} threads, BLAS ${started.info.blas})`);
if (peers && /reference BLAS/.test((started as { info: { blas: string } }).info.blas)) {
  console.log('  warning: torch runs on the reference BLAS (~25× slower than OpenBLAS): install libopenblas0-pthread for a fair peer');
}

// The fp32 GEMM peak of this machine, now: both engines at the default encoder shape (4096×512×4096) and at 2048³;
// "peak" is the best. Fixed shapes, so a wide run's peak RSS is not inflated by a [B, d_sae] peak-measurement buffer.
const peakShapes: [number, number, number][] = [[4096, 512, 4096], [2048, 2048, 2048]];
const ortPeak = await engineGemmPeak(engine, peakShapes);
const torchPeak = peers ? await peers.gemm(peakShapes) : [];
const PEAK_GFLOPS = Math.max(...[...ortPeak, ...torchPeak].map((g) => g.gflops));
const showPeak = (name: string, gs: { m: number; k: number; n: number; gflops: number }[]) =>
  `${name} ${gs.map((g) => `${g.m}×${g.k}×${g.n} ${g.gflops.toFixed(0)}`).join(', ')}`;
console.log(`GEMM GFLOP/s: ${showPeak(engine.name, ortPeak)}${torchPeak.length ? `; ${showPeak('torch', torchPeak)}` : ''}; peak ${PEAK_GFLOPS.toFixed(0)}\n`);
console.log(
  'arch      sparsity     L0  tokens/s  ms/step  ×dense (peer tok/s)  ×sparse (peer tok/s)  goal  GFLOP/s (% peak): encode decode backward  ms: optimiser stats  dense-eq GF/s  RSS MiB (+growth)  live Δ MiB',
);

/** Runs the peers of one row; a failing peer is reported and leaves its column empty. */
async function peerRow(name: string, sparsity: 'init' | 'trained'): Promise<{ dense: PeerStepResult | null; sparse: PeerStepResult | null }> {
  if (!peers) return { dense: null, sparse: null };
  const run = async (variant: string) => {
    try {
      return await peers.step({ arch: name, variant, dIn, dSae, batch, k: targetL0, sparsity, warmup, steps: peerSteps });
    } catch (e) {
      console.log(`  peer ${name}/${variant}: ${(e as Error).message}`);
      return null;
    }
  };
  const dense: PeerStepResult[] = [];
  for (const v of peerVariants) {
    const r = await run(v);
    if (r) dense.push(r);
  }
  const fastest = dense.reduce<PeerStepResult | null>((a, b) => (a && a.tokensPerS >= b.tokensPerS ? a : b), null);
  const sparseVariant = SPARSE_VARIANT[name];
  const sparse = sparseVariant && values.peers !== 'none' ? await run(sparseVariant) : null;
  for (const r of [...dense, ...(sparse ? [sparse] : [])]) {
    console.log(`  peer ${name}/${r.variant} ${sparsity}: L0 ${r.l0.toFixed(0)}, ${r.tokensPerS.toFixed(0)} tokens/s (${r.ms.toFixed(0)} ms/step)`);
  }
  return { dense: fastest, sparse };
}

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
    const peer = await peerRow(name, sparsity as 'init' | 'trained');
    const cfg = arch.configSchema.parse({ dIn, dSae, ...(arch.runConfig?.(LONG_RUN) ?? {}) });
    const params = arch.init(cfg, new Rng(1));
    if (sparsity === 'trained') await setTrainedSparsity(arch, params);
    const workspace = new Workspace({ mode, kernels });
    const options = recipeOptions(arch, warmup + steps, defaultSparsityFor(arch, cfg), cfg);
    options.sparsityWarmupSteps = 0; // time the full step at the final λ
    options.resample = null; // a few steps of a long run: no resampling event falls in them
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
    const sparse = mode === 'sparse' || (mode === 'auto' && l0 <= workspace.maxSparseDensity * dSae);
    const product = sparse ? 2 * batch * l0 * dIn : gemm; // one decode/backward product as executed
    const { decode: nDecode, backward: nBackward } = PRODUCTS[name] ?? { decode: 1, backward: 3 };
    const ph = workspace.timer.totals;
    const phaseMs = (k: string) => (ph[k] ?? 0) / steps;
    const rate = (flops: number, k: string) => {
      const gf = flops / phaseMs(k) / 1e6;
      return `${gf.toFixed(gf < 10 ? 1 : 0).padStart(4)} (${((100 * gf) / PEAK_GFLOPS).toFixed(0).padStart(2)}%)`;
    };
    const denseEq = ((1 + nDecode + nBackward) * gemm) / ms / 1e6;
    const ratio = (p: PeerStepResult | null) => (p ? `${(tps / p.tokensPerS).toFixed(2).padStart(6)}× (${p.tokensPerS.toFixed(0).padStart(6)})` : '     —          ');
    const goals: boolean[] = [];
    if (peer.dense) goals.push(tps / peer.dense.tokensPerS >= GOAL_DENSE[sparsity as 'init' | 'trained']);
    if (peer.sparse && sparsity === 'trained') goals.push(tps / peer.sparse.tokensPerS >= GOAL_SPARSE);
    const goal = goals.length === 0 ? '  —' : goals.every(Boolean) ? ' met' : 'MISS';
    console.log(
      `${name.padEnd(9)} ${sparsity.padEnd(8)} ${l0.toFixed(0).padStart(6)} ${tps.toFixed(0).padStart(9)} ${ms.toFixed(0).padStart(8)}` +
        `  ${ratio(peer.dense)}    ${ratio(peer.sparse)}    ${goal}` +
        `   ${rate(gemm, 'encode')} ${rate(nDecode * product, 'decode')} ${rate(nBackward * product, 'backward')}` +
        `   ${phaseMs('optimiser').toFixed(0).padStart(4)} ${phaseMs('stats').toFixed(0).padStart(4)}` +
        `   ${denseEq.toFixed(0).padStart(8)}  ${(peak / 2 ** 20).toFixed(0).padStart(9)} (${(growth / 2 ** 20 >= 0 ? '+' : '') + (growth / 2 ** 20).toFixed(0)})` +
        `  ${liveGrowth === null ? '   n/a' : ((liveGrowth / 2 ** 20 >= 0 ? '+' : '') + (liveGrowth / 2 ** 20).toFixed(1)).padStart(6)}`,
    );
    console.log(`          phases ms: ${['encode', 'decode', 'backward', 'optimiser', 'stats'].map((k) => `${k} ${phaseMs(k).toFixed(0)}`).join(', ')}`);
  }
}
peers?.close();
