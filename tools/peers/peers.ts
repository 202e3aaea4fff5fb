/**
 * The benchmark's live peers (issue 15): a client for `sae_peers.py --serve` (the PyTorch steps, one Python process
 * for the whole run so torch is imported once and each peer row runs right before ours, under the same load), and the
 * GEMM peak measured in the same run for both engines. Nothing here is a constant: every figure a ratio divides by
 * is measured by the run that prints it.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { GemmEngine } from '@saelab/core';

/** Debian's interpreter (its python3-torch); the PATH python3 may be another one. `SAELAB_PYTHON` overrides. */
export const PEER_PYTHON = process.env.SAELAB_PYTHON ?? '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./sae_peers.py', import.meta.url));

export interface PeerInfo {
  torch: string;
  threads: number;
  python: string;
  blas: string;
}

export interface PeerStepRequest {
  arch: string;
  /** 'autograd' | 'manual' (dense) | 'sparse' (TopK only: sparsify's formulation). */
  variant: string;
  dIn: number;
  dSae: number;
  batch: number;
  k: number;
  sparsity: 'init' | 'trained';
  warmup: number;
  steps: number;
}

export interface PeerStepResult {
  arch: string;
  variant: string;
  l0: number;
  ms: number;
  tokensPerS: number;
  msMin: number;
  msMax: number;
}

export interface GemmShape {
  m: number;
  k: number;
  n: number;
  gflops: number;
}

/** The dense variants per architecture, and the sparse one where it exists (mirrors sae_peers.py's VARIANTS). */
export const DENSE_VARIANTS = ['autograd', 'manual'] as const;
export const SPARSE_VARIANT: Record<string, string | undefined> = { topk: 'sparse' };

/** A running `sae_peers.py --serve`: requests are answered in order, one JSON line each. */
export class Peers {
  private readonly lines: AsyncIterableIterator<string>;
  private stderr = '';

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  /** Starts the peer process, or returns why it cannot run (no interpreter, no torch) as a one-line message. */
  static async start(python = PEER_PYTHON): Promise<{ peers: Peers; info: PeerInfo } | { skipped: string }> {
    if (!existsSync(python)) return { skipped: `PyTorch peers skipped: ${python} not found (set SAELAB_PYTHON to an interpreter with torch)` };
    const child = spawn(python, [SCRIPT, '--serve'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const peers = new Peers(child);
    const exited = new Promise<string>((resolve) => child.on('exit', (code) => resolve(`exit status ${code}`)));
    const spawnError = new Promise<string>((resolve) => child.on('error', (e) => resolve(e.message)));
    const first = peers.request<PeerInfo>({ cmd: 'describe' });
    const result = await Promise.race([first, exited.then((s) => new Error(s)), spawnError.then((s) => new Error(s))]);
    if (result instanceof Error) {
      const why = peers.stderr.trim().split('\n').pop() || result.message;
      return { skipped: `PyTorch peers skipped: ${why}` };
    }
    return { peers, info: result };
  }

  private async request<T>(req: object): Promise<T> {
    this.child.stdin.write(`${JSON.stringify(req)}\n`);
    const { value, done } = await this.lines.next();
    if (done) throw new Error(`sae_peers.py exited: ${this.stderr.trim().split('\n').pop() ?? ''}`);
    const out = JSON.parse(value) as T & { error?: string };
    if (out.error) throw new Error(`sae_peers.py: ${out.error}`);
    return out;
  }

  step(req: PeerStepRequest): Promise<PeerStepResult> {
    return this.request<PeerStepResult>({ cmd: 'step', ...req });
  }

  /** torch.mm GFLOP/s at each (m, k, n), best of `reps`. */
  async gemm(shapes: [number, number, number][], reps = 5): Promise<GemmShape[]> {
    return (await this.request<{ shapes: GemmShape[] }>({ cmd: 'gemm', shapes, reps })).shapes;
  }

  close(): void {
    this.child.stdin.end();
  }
}

/** The ORT engine's GFLOP/s at each (m, k, n): best of `reps` calls writing into one reused output buffer. */
export async function engineGemmPeak(engine: GemmEngine, shapes: [number, number, number][], reps = 5): Promise<GemmShape[]> {
  const out: GemmShape[] = [];
  for (const [m, k, n] of shapes) {
    const a = { data: new Float32Array(m * k).fill(0.5), shape: [m, k] };
    const b = { data: new Float32Array(k * n).fill(0.25), shape: [k, n] };
    const c = { data: new Float32Array(m * n), shape: [m, n] };
    await engine.gemm(a, b, { out: c });
    let best = Infinity;
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      await engine.gemm(a, b, { out: c });
      best = Math.min(best, performance.now() - t0);
    }
    out.push({ m, k, n, gflops: (2 * m * k * n) / best / 1e6 });
  }
  return out;
}
