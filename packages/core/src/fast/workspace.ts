/**
 * Reusable per-run buffers and the sparse/dense switch for SAE training steps.
 *
 * A training step at d_sae 4096, batch 4096 touches several 64 MiB [B, m] matrices; allocating them afresh each
 * step costs page faults and GC pauses and makes memory saw-tooth. A `Workspace` hands out named buffers that are
 * allocated once (or grown) and reused every step, so resident memory stays flat after the first step.
 * Buffers returned by `lossAndGrads` through a workspace are valid until the next step that uses it.
 */
import { type Tensor, numel } from '../tensor.js';
import { SparseRows } from './csr.js';

/**
 * How the shared SAE ops run products that involve sparse latents:
 * - 'auto': sparse kernels when the latents are sparse enough (density ≤ `maxSparseDensity`), else dense GEMM;
 * - 'sparse': always the sparse kernels;  - 'dense': always densify and use the GEMM engine (the reference path).
 */
export type SparseMode = 'auto' | 'sparse' | 'dense';

export interface WorkspaceOptions {
  mode?: SparseMode;
  /** 'auto' uses sparse kernels at or below this fraction of stored entries (default 1/16, i.e. L0 256 of 4096). */
  maxSparseDensity?: number;
  /** Sparse kernel implementation: WebAssembly SIMD where available (default) or plain TypeScript. */
  kernels?: 'wasm' | 'ts';
}

export class Workspace {
  readonly mode: SparseMode;
  readonly maxSparseDensity: number;
  readonly kernels: 'wasm' | 'ts';
  private floats = new Map<string, Float32Array>();
  private sparse = new Map<string, SparseRows>();
  /** Milliseconds per phase, accumulated by `phase()` marks (see `PhaseTimer`). */
  readonly timer = new PhaseTimer();

  constructor(options: WorkspaceOptions = {}) {
    this.mode = options.mode ?? 'auto';
    this.maxSparseDensity = options.maxSparseDensity ?? 1 / 16;
    this.kernels = options.kernels ?? 'wasm';
  }

  /** The same settings with fresh buffers (for results that must outlive the next step, e.g. `encode`). */
  fresh(): Workspace {
    return new Workspace({ mode: this.mode, maxSparseDensity: this.maxSparseDensity, kernels: this.kernels });
  }

  /** A float32 buffer of exactly `n` elements under `name` (contents unspecified; grown when too small). */
  buffer(name: string, n: number): Float32Array {
    let b = this.floats.get(name);
    if (!b || b.length < n) {
      b = new Float32Array(n);
      this.floats.set(name, b);
    }
    return b.length === n ? b : b.subarray(0, n);
  }

  /** A tensor of `shape` backed by the buffer `name` (contents unspecified). */
  tensor(name: string, shape: readonly number[]): Tensor {
    return { data: this.buffer(name, numel(shape)), shape: [...shape] };
  }

  /** A zero-filled tensor backed by the buffer `name`. */
  zeros(name: string, shape: readonly number[]): Tensor {
    const t = this.tensor(name, shape);
    t.data.fill(0);
    return t;
  }

  /** The reusable sparse matrix `name`, emptied and shaped [rows, cols]. */
  sparseRows(name: string, rows: number, cols: number): SparseRows {
    let s = this.sparse.get(name);
    if (!s) {
      s = new SparseRows();
      this.sparse.set(name, s);
    }
    return s.reset(rows, cols);
  }

  /** Whether products with this sparse matrix should use the sparse kernels. */
  useSparse(s: SparseRows): boolean {
    if (this.mode !== 'auto') return this.mode === 'sparse';
    return s.nnz <= this.maxSparseDensity * s.rows * s.cols;
  }

  /** Marks the start of a phase (for the benchmark's breakdown); cheap enough to leave on. */
  phase(name: string | null): void {
    this.timer.mark(name);
  }

  /** Bytes held by this workspace's buffers. */
  bytes(): number {
    let b = 0;
    for (const f of this.floats.values()) b += f.byteLength;
    for (const s of this.sparse.values()) b += s.indices.byteLength + s.values.byteLength + s.rowPtr.byteLength;
    return b;
  }
}

/** Time between successive `mark`s is charged to the phase named by the earlier mark. */
export class PhaseTimer {
  totals: Record<string, number> = {};
  private current: string | null = null;
  private since = 0;

  mark(name: string | null): void {
    const now = performance.now();
    if (this.current !== null) this.totals[this.current] = (this.totals[this.current] ?? 0) + (now - this.since);
    this.current = name;
    this.since = now;
  }

  reset(): void {
    this.totals = {};
    this.current = null;
  }
}

/** The workspace carried by a context, or a throwaway one (fresh buffers) when there is none. */
export function workspaceOf(ctx: { workspace?: Workspace }): Workspace {
  return ctx.workspace ?? new Workspace();
}
