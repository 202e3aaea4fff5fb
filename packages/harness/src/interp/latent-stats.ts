/**
 * Streaming per-latent statistics for dashboards, in memory bounded by d_sae (not by the number of tokens N):
 *  - firing count, activation sum and maximum;
 *  - a log-spaced activation histogram (HIST_BINS bins of a quarter octave from 2^HIST_MIN_LOG2);
 *  - the top-k activating tokens: a min-heap of size k per latent (ties: the earlier token wins), each with its
 *    context window (`before` tokens before, `after` after, within the LM window) and the latent's activation on
 *    every token of the window, copied when the token enters the heap;
 *  - a uniform sample of the latent's firings with contexts (reservoir sampling, Vitter's Algorithm R; seeded), from
 *    which the dashboard draws quantile-sampled contexts (SAEDashboard shows contexts from activation intervals, which
 *    needs a second pass; a uniform reservoir sorted by activation gives the same spread of the distribution in one);
 *  - a larger reservoir of (token id, POS label, activation) triples without contexts, for the token-type and POS
 *    concentration scores (docs/interpretability.md).
 * The state is typed arrays of fixed size: m·(k + r)·(before + 1 + after) context slots plus m·(rs + HIST_BINS + 4).
 */
import { Rng } from '@saelab/core';

export const HIST_BINS = 96;
export const HIST_MIN_LOG2 = -12; // bins cover [2^-12, 2^12)

export interface LatentStatsOptions {
  topK?: number;
  /** Contexts kept in the uniform reservoir. */
  sampled?: number;
  /** (token, POS, act) triples kept for the concentration scores. */
  scoreSamples?: number;
  before?: number;
  after?: number;
  seed?: number;
}

/** One batch of an LM pass: latents of every row, and per row its token, window and position. */
export interface LatentBatch {
  /** [rows, m] latents. */
  latents: Float32Array;
  rows: number;
  /** Token id per row. */
  tokens: Int32Array;
  /** POS label per row (-1 = none). */
  pos: Int8Array;
  /** Whether a row counts (false for BOS, padding, and tokens past the harvest's budget). */
  valid: Uint8Array;
  /** Whether a row is a real document token that may appear in a context (false for BOS and padding); default `valid`. */
  real?: Uint8Array;
  /** Rows of one LM window are contiguous: window w covers rows [w·T, (w+1)·T). */
  seqLen: number;
  /** Global index of the batch's first window (contexts are identified by window and position). */
  firstWindow: number;
}

export interface StoredContext {
  act: number;
  window: number;
  /** Position of the activating token in the window. */
  position: number;
  /** Index of the activating token in `tokens`. */
  center: number;
  tokens: number[];
  acts: number[];
}

class ContextSlots {
  readonly tokens: Int32Array;
  readonly acts: Float32Array;
  readonly value: Float64Array;
  readonly window: Int32Array;
  readonly position: Int32Array;
  readonly center: Int16Array;
  readonly length: Int16Array;
  constructor(
    readonly slots: number,
    readonly width: number,
  ) {
    this.tokens = new Int32Array(slots * width);
    this.acts = new Float32Array(slots * width);
    this.value = new Float64Array(slots);
    this.window = new Int32Array(slots);
    this.position = new Int32Array(slots);
    this.center = new Int16Array(slots);
    this.length = new Int16Array(slots);
  }
  get(s: number): StoredContext {
    const n = this.length[s]!;
    return {
      act: this.value[s]!,
      window: this.window[s]!,
      position: this.position[s]!,
      center: this.center[s]!,
      tokens: Array.from(this.tokens.subarray(s * this.width, s * this.width + n)),
      acts: Array.from(this.acts.subarray(s * this.width, s * this.width + n)),
    };
  }
}

export class LatentStats {
  readonly m: number;
  readonly topK: number;
  readonly sampled: number;
  readonly scoreSamples: number;
  readonly before: number;
  readonly after: number;
  /** Tokens seen (valid rows). */
  tokensSeen = 0;
  readonly count: Float64Array;
  readonly sum: Float64Array;
  readonly max: Float64Array;
  readonly hist: Uint32Array;
  private readonly heapSize: Int32Array;
  private readonly top: ContextSlots;
  private readonly sampleSize: Int32Array;
  private readonly samples: ContextSlots;
  private readonly scoreSize: Int32Array;
  readonly scoreToken: Int32Array;
  readonly scorePos: Int8Array;
  readonly scoreAct: Float32Array;
  private readonly rng: Rng;

  constructor(m: number, o: LatentStatsOptions = {}) {
    this.m = m;
    this.topK = o.topK ?? 20;
    this.sampled = o.sampled ?? 24;
    this.scoreSamples = o.scoreSamples ?? 256;
    this.before = o.before ?? 12;
    this.after = o.after ?? 4;
    const width = this.before + 1 + this.after;
    this.count = new Float64Array(m);
    this.sum = new Float64Array(m);
    this.max = new Float64Array(m);
    this.hist = new Uint32Array(m * HIST_BINS);
    this.heapSize = new Int32Array(m);
    this.top = new ContextSlots(m * this.topK, width);
    this.sampleSize = new Int32Array(m);
    this.samples = new ContextSlots(m * this.sampled, width);
    this.scoreSize = new Int32Array(m);
    this.scoreToken = new Int32Array(m * this.scoreSamples);
    this.scorePos = new Int8Array(m * this.scoreSamples);
    this.scoreAct = new Float32Array(m * this.scoreSamples);
    this.rng = new Rng(o.seed ?? 0);
  }

  /** Bytes held by the state (fixed at construction: it does not grow with the tokens seen). */
  stateBytes(): number {
    const slots = (c: ContextSlots) => c.tokens.byteLength + c.acts.byteLength + c.value.byteLength + c.window.byteLength + c.position.byteLength + c.center.byteLength + c.length.byteLength;
    return (
      this.count.byteLength + this.sum.byteLength + this.max.byteLength + this.hist.byteLength + this.heapSize.byteLength + this.sampleSize.byteLength +
      this.scoreSize.byteLength + this.scoreToken.byteLength + this.scorePos.byteLength + this.scoreAct.byteLength + slots(this.top) + slots(this.samples)
    );
  }

  /** Heap order: a is "smaller" (evicted first) when its activation is lower, or equal and it came later. */
  private less(s: number, t: number): boolean {
    const v = this.top.value;
    if (v[s]! !== v[t]!) return v[s]! < v[t]!;
    const w = this.top.window;
    if (w[s]! !== w[t]!) return w[s]! > w[t]!;
    return this.top.position[s]! > this.top.position[t]!;
  }

  private swap(s: number, t: number): void {
    const c = this.top;
    const W = c.width;
    for (const arr of [c.value, c.window, c.position, c.center, c.length] as const) {
      const tmp = arr[s]!;
      arr[s] = arr[t]!;
      arr[t] = tmp;
    }
    for (let i = 0; i < W; i++) {
      const a = c.tokens[s * W + i]!;
      c.tokens[s * W + i] = c.tokens[t * W + i]!;
      c.tokens[t * W + i] = a;
      const b = c.acts[s * W + i]!;
      c.acts[s * W + i] = c.acts[t * W + i]!;
      c.acts[t * W + i] = b;
    }
  }

  private fillContext(c: ContextSlots, slot: number, j: number, value: number, b: LatentBatch, row: number): void {
    const T = b.seqLen;
    const w = Math.floor(row / T);
    const p = row - w * T;
    const real = b.real ?? b.valid;
    let lo = Math.max(w * T, row - this.before);
    while (lo < row && !real[lo]) lo++; // skip BOS / padding
    let hi = Math.min((w + 1) * T - 1, row + this.after);
    while (hi > row && !real[hi]) hi--;
    const W = c.width;
    for (let r = lo; r <= hi; r++) {
      c.tokens[slot * W + r - lo] = b.tokens[r]!;
      c.acts[slot * W + r - lo] = b.latents[r * this.m + j]!;
    }
    c.value[slot] = value;
    c.window[slot] = b.firstWindow + w;
    c.position[slot] = p;
    c.center[slot] = row - lo;
    c.length[slot] = hi - lo + 1;
  }

  /** Adds one batch. */
  observe(b: LatentBatch): void {
    const m = this.m;
    const K = this.topK;
    for (let row = 0; row < b.rows; row++) {
      if (!b.valid[row]) continue;
      this.tokensSeen++;
      const off = row * m;
      for (let j = 0; j < m; j++) {
        const a = b.latents[off + j]!;
        if (!(a > 0)) continue;
        const n = ++this.count[j]!;
        this.sum[j]! += a;
        if (a > this.max[j]!) this.max[j] = a;
        const bin = Math.floor((Math.log2(a) - HIST_MIN_LOG2) * 4);
        this.hist[j * HIST_BINS + Math.min(HIST_BINS - 1, Math.max(0, bin))]!++;
        this.offerTop(j, a, b, row, K);
        // Reservoirs (Algorithm R): the n-th firing replaces a random slot with probability size / n.
        const R = this.sampled;
        if (this.sampleSize[j]! < R) this.fillContext(this.samples, j * R + this.sampleSize[j]!++, j, a, b, row);
        else {
          const r = this.rng.int(n);
          if (r < R) this.fillContext(this.samples, j * R + r, j, a, b, row);
        }
        const S = this.scoreSamples;
        let slot = -1;
        if (this.scoreSize[j]! < S) slot = this.scoreSize[j]!++;
        else {
          const r = this.rng.int(n);
          if (r < S) slot = r;
        }
        if (slot >= 0) {
          this.scoreToken[j * S + slot] = b.tokens[row]!;
          this.scorePos[j * S + slot] = b.pos[row]!;
          this.scoreAct[j * S + slot] = a;
        }
      }
    }
  }

  private offerTop(j: number, a: number, b: LatentBatch, row: number, K: number): void {
    const base = j * K;
    const size = this.heapSize[j]!;
    const c = this.top;
    if (size < K) {
      this.fillContext(c, base + size, j, a, b, row);
      this.heapSize[j] = size + 1;
      // Sift up.
      for (let i = size; i > 0; ) {
        const parent = (i - 1) >> 1;
        if (!this.less(base + i, base + parent)) break;
        this.swap(base + i, base + parent);
        i = parent;
      }
      return;
    }
    // Full: replace the minimum if the new token ranks above it (higher act; on a tie the earlier token stays).
    if (!(a > c.value[base]!)) return;
    this.fillContext(c, base, j, a, b, row);
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < K && this.less(base + l, base + smallest)) smallest = l;
      if (r < K && this.less(base + r, base + smallest)) smallest = r;
      if (smallest === i) break;
      this.swap(base + i, base + smallest);
      i = smallest;
    }
  }

  /** Latent j's top contexts, highest activation first (ties: earlier token first). */
  topContexts(j: number): StoredContext[] {
    const out: StoredContext[] = [];
    for (let s = 0; s < this.heapSize[j]!; s++) out.push(this.top.get(j * this.topK + s));
    return out.sort((x, y) => y.act - x.act || x.window - y.window || x.position - y.position);
  }

  /** Latent j's uniformly sampled contexts, sorted by activation (descending). */
  sampledContexts(j: number): StoredContext[] {
    const out: StoredContext[] = [];
    for (let s = 0; s < this.sampleSize[j]!; s++) out.push(this.samples.get(j * this.sampled + s));
    return out.sort((x, y) => y.act - x.act || x.window - y.window || x.position - y.position);
  }

  /** Latent j's (token, POS, act) sample for the concentration scores. */
  scoreSample(j: number): { token: number; pos: number; act: number }[] {
    const S = this.scoreSamples;
    return Array.from({ length: this.scoreSize[j]! }, (_, s) => ({ token: this.scoreToken[j * S + s]!, pos: this.scorePos[j * S + s]!, act: this.scoreAct[j * S + s]! }));
  }
}

/**
 * LLM-free interpretability proxies of one latent from its (token, POS, activation) sample (docs/interpretability.md):
 *  - tokenTypes: exp of the entropy of the activation mass over token types (the effective number of token types the
 *    latent fires on; 1 = a single-token latent);
 *  - topTokenShare: the share of activation mass on the most-weighted token type;
 *  - posPurity: among sampled firings on POS-labelled tokens (Brown text), the largest share of activation mass on one
 *    coarse tag, with that tag; null when fewer than `minPos` such firings were sampled.
 */
export function concentrationScores(sample: readonly { token: number; pos: number; act: number }[], minPos = 8): {
  tokenTypes: number | null;
  topToken: number | null;
  topTokenShare: number | null;
  posPurity: number | null;
  posClass: number | null;
} {
  if (sample.length === 0) return { tokenTypes: null, topToken: null, topTokenShare: null, posPurity: null, posClass: null };
  const mass = new Map<number, number>();
  let total = 0;
  for (const s of sample) {
    mass.set(s.token, (mass.get(s.token) ?? 0) + s.act);
    total += s.act;
  }
  let h = 0;
  let topToken = -1;
  let topMass = -1;
  for (const [t, v] of mass) {
    const p = v / total;
    if (p > 0) h -= p * Math.log(p);
    if (v > topMass || (v === topMass && t < topToken)) {
      topMass = v;
      topToken = t;
    }
  }
  const posMass = new Map<number, number>();
  let posTotal = 0;
  let posCount = 0;
  for (const s of sample) {
    if (s.pos < 0) continue;
    posMass.set(s.pos, (posMass.get(s.pos) ?? 0) + s.act);
    posTotal += s.act;
    posCount++;
  }
  let posClass: number | null = null;
  let posPurity: number | null = null;
  if (posCount >= minPos && posTotal > 0) {
    for (const [c, v] of posMass) {
      if (posPurity === null || v / posTotal > posPurity || (v / posTotal === posPurity && c < posClass!)) {
        posPurity = v / posTotal;
        posClass = c;
      }
    }
  }
  return { tokenTypes: Math.exp(h), topToken, topTokenShare: topMass / total, posPurity, posClass };
}
