/**
 * Parallel scan over the batch: batch elements are independent, and [B, L, ·] layouts make a batch range a
 * contiguous slice, so each worker thread runs the very same kernel (scan.ts) on its slice and the main thread
 * takes one slice itself. Results are bit-identical to the single-threaded kernel (only ∂A_log, a sum over the
 * batch, is reduced in a different order).
 *
 * Threads: SAELAB_SCAN_THREADS or `setScanThreads(n)`; by default 1 (no workers) when the WebAssembly SIMD kernel
 * runs — measured at the performance shape, copying slices to and from workers costs more than it saves once the
 * scan is ~15% of the step (4224 vs 3769 tok/s) — and os.availableParallelism() for the TypeScript kernel.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type FloatArray, type ScanGrads, type ScanInputs, type ScanOptions, type ScanSaved, type ScanShape, type Transition, DEFAULT_CHUNK, SIMD_TRANSITIONS, scanBackward, scanForward, scanImplFor } from './scan.js';
import type { ScanJob } from './scan-worker.js';

const fromEnv = process.env.SAELAB_SCAN_THREADS;
let threads: number | null = fromEnv ? Math.max(1, Number(fromEnv) || 1) : null;

/** Number of threads (main included) the batched scan uses; null restores the default. */
export function setScanThreads(n: number | null): void {
  if (n !== null && (!Number.isInteger(n) || n < 1)) throw new Error(`setScanThreads: need a positive integer or null, got ${n}`);
  threads = n;
}
/** Threads a scan runs on: the number set, else 1 for the SIMD kernel and all cores for the TypeScript one. */
export const scanThreads = (impl: 'js' | 'simd' = 'simd') => threads ?? (impl === 'simd' ? 1 : availableParallelism());

interface PoolWorker {
  worker: Worker;
  queue: Promise<unknown>;
}
const workers: PoolWorker[] = [];

function spawn(): PoolWorker {
  const worker = new Worker(new URL('./scan-worker-boot.mjs', import.meta.url), {
    workerData: { entry: new URL('./scan-worker.ts', import.meta.url).href },
  });
  worker.unref(); // an idle pool never keeps the process alive
  return { worker, queue: Promise.resolve() };
}

/** Runs one job on worker i (jobs on the same worker are queued). */
function run<T>(i: number, job: ScanJob, transfer: ArrayBuffer[]): Promise<T> {
  while (workers.length <= i) workers.push(spawn());
  const pw = workers[i]!;
  const p = pw.queue.then(
    () =>
      new Promise<T>((resolve, reject) => {
        const w = pw.worker;
        w.ref();
        const done = () => {
          w.off('message', onMsg);
          w.off('error', onErr);
          w.unref();
        };
        const onMsg = (m: T & { error?: string }) => {
          done();
          if (m.error) reject(new Error(m.error));
          else resolve(m);
        };
        const onErr = (e: Error) => {
          done();
          reject(e);
        };
        w.on('message', onMsg);
        w.on('error', onErr);
        w.postMessage(job, transfer);
      }),
  );
  pw.queue = p.catch(() => undefined);
  return p;
}

/** Batch ranges for `parts` slices. */
function ranges(B: number, parts: number): [number, number][] {
  const out: [number, number][] = [];
  for (let p = 0; p < parts; p++) out.push([Math.floor((p * B) / parts), Math.floor(((p + 1) * B) / parts)]);
  return out;
}

const cut = (a: FloatArray, b0: number, b1: number, per: number, copy: boolean): FloatArray =>
  copy ? a.slice(b0 * per, b1 * per) : a.subarray(b0 * per, b1 * per);

function sliceInputs(inp: ScanInputs, s: ScanShape, b0: number, b1: number, copy: boolean): ScanInputs {
  const { seqLen: L, dInner: d, dState: n } = s;
  return {
    x: cut(inp.x, b0, b1, L * d, copy),
    z: cut(inp.z, b0, b1, L * d, copy),
    k: cut(inp.k, b0, b1, L * n, copy),
    q: cut(inp.q, b0, b1, L * n, copy),
    aLog: inp.aLog ? (copy ? inp.aLog.slice() : inp.aLog) : undefined,
  };
}

/**
 * The pool splits the three transitions of the SIMD kernel; Mamba2 and the delta rules (TypeScript kernel, extra
 * saved arrays, A_log [d]) run on the calling thread.
 */
const pooled = (kind: Transition) => (SIMD_TRANSITIONS as readonly Transition[]).includes(kind);

const alloc = (like: FloatArray, len: number): FloatArray => (like instanceof Float64Array ? new Float64Array(len) : new Float32Array(len));

/** `scanForward` split over threads. */
export async function scanForwardParallel(
  kind: Transition, shape: ScanShape, inp: ScanInputs, opts: ScanOptions = {},
): Promise<{ y: FloatArray; saved: ScanSaved }> {
  const parts = Math.min(scanThreads(scanImplFor(kind, shape, inp, opts.impl)), shape.batch);
  if (parts <= 1 || !pooled(kind)) return scanForward(kind, shape, inp, opts);
  const chunk = opts.chunk ?? DEFAULT_CHUNK;
  const { batch: B, seqLen: L, dInner: d, dState: n } = shape;
  const nSeg = Math.ceil(L / chunk);
  const rs = ranges(B, parts);
  // The main thread's slice first: it fixes the kernel (impl) every worker must use.
  const [m0, m1] = rs[0]!;
  const local = scanForward(kind, { ...shape, batch: m1 - m0 }, sliceInputs(inp, shape, m0, m1, false), { chunk, impl: opts.impl });
  const impl = local.saved.impl;
  const remote = rs.slice(1).map(([b0, b1], i) =>
    run<{ y: FloatArray; coef: FloatArray; checkpoints: FloatArray }>(i, { op: 'fwd', kind, shape: { ...shape, batch: b1 - b0 }, inp: sliceInputs(inp, shape, b0, b1, true), chunk, impl }, []),
  );
  const y = alloc(inp.x, B * L * d);
  const coef = alloc(local.saved.coef, B * L * d);
  const checkpoints = alloc(local.saved.checkpoints, B * nSeg * d * n);
  const parts_ = [{ y: local.y, coef: local.saved.coef, checkpoints: local.saved.checkpoints }, ...(await Promise.all(remote))];
  parts_.forEach((p, i) => {
    const b0 = rs[i]![0];
    y.set(p.y, b0 * L * d);
    coef.set(p.coef, b0 * L * d);
    checkpoints.set(p.checkpoints, b0 * nSeg * d * n);
  });
  return { y, saved: { kind, shape: { ...shape }, chunk, impl, coef, checkpoints } };
}

/** `scanBackward` split over threads. */
export async function scanBackwardParallel(inp: ScanInputs, saved: ScanSaved, gy: FloatArray): Promise<ScanGrads> {
  const shape = saved.shape;
  const parts = Math.min(scanThreads(saved.impl), shape.batch);
  if (parts <= 1 || !pooled(saved.kind)) return scanBackward(inp, saved, gy);
  const { batch: B, seqLen: L, dInner: d, dState: n } = shape;
  const nSeg = Math.ceil(L / saved.chunk);
  const rs = ranges(B, parts);
  const sliceSaved = (b0: number, b1: number, copy: boolean): ScanSaved => ({
    ...saved,
    shape: { ...shape, batch: b1 - b0 },
    coef: cut(saved.coef, b0, b1, L * d, copy),
    checkpoints: cut(saved.checkpoints, b0, b1, nSeg * d * n, copy),
  });
  const remote = rs.slice(1).map(([b0, b1], i) =>
    run<ScanGrads>(i, { op: 'bwd', inp: sliceInputs(inp, shape, b0, b1, true), saved: sliceSaved(b0, b1, true), gy: cut(gy, b0, b1, L * d, true) }, []),
  );
  const [m0, m1] = rs[0]!;
  const local = scanBackward(sliceInputs(inp, shape, m0, m1, false), sliceSaved(m0, m1, false), cut(gy, m0, m1, L * d, false));
  const all = [local, ...(await Promise.all(remote))];
  const out: ScanGrads = { gx: alloc(inp.x, B * L * d), gz: alloc(inp.x, B * L * d), gk: alloc(inp.x, B * L * n), gq: alloc(inp.x, B * L * n) };
  all.forEach((g, i) => {
    const b0 = rs[i]![0];
    out.gx.set(g.gx, b0 * L * d);
    out.gz.set(g.gz, b0 * L * d);
    out.gk.set(g.gk, b0 * L * n);
    out.gq.set(g.gq, b0 * L * n);
  });
  if (saved.kind === 'mamba') {
    const gA = alloc(inp.x, d * n);
    for (const g of all) for (let i = 0; i < gA.length; i++) gA[i]! += g.gALog![i]!;
    out.gALog = gA;
  }
  return out;
}
