/**
 * Activation files as row sources: a 2-D [N, d] array in a `.npy` file or a safetensors tensor (`file#name` picks
 * one of several), read through a file handle a few rows at a time — never the whole file — and converted to
 * float32. Rows holding NaN/Inf are rejected with the file and row named. On top: a seeded, bounded-memory,
 * exactly resumable shuffled batch stream, and uniform row sampling for estimates.
 */
import { open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { Rng } from '../rng.js';
import type { Tensor } from '../tensor.js';
import type { FloatDtype } from './dtype.js';
import { readNpyHeaderFrom, readNpyRowsFrom } from './npy.js';
import { findTensor, readSafetensorsHeaderFrom, readTensorRows, safetensorsFloatDtype } from './safetensors.js';
import { readExactly } from './read.js';

/** Anything that can hand out rows [start, start+count) of an [rows, d] matrix as float32 (row-major). */
export interface RowSource {
  readonly rows: number;
  readonly d: number;
  readRows(start: number, count: number): Promise<Float32Array>;
}

export interface ActivationFile extends RowSource {
  /** The file path (without any `#name`). */
  readonly path: string;
  /** The safetensors tensor name, if the file is safetensors. */
  readonly tensorName?: string;
  /** Storage type in the file (rows are always returned as float32). */
  readonly dtype: FloatDtype;
  /** Closes the file handle. */
  close(): Promise<void>;
}

async function fileExists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** `file` or `file#tensorName`; a path that exists as written wins (file names may contain '#'). */
async function splitSpec(spec: string): Promise<{ path: string; name?: string }> {
  if ((await fileExists(spec)) || !spec.includes('#')) return { path: spec };
  const i = spec.lastIndexOf('#');
  return { path: spec.slice(0, i), name: spec.slice(i + 1) };
}

/** Throws naming the file and row if any value in `data` (rows from `start`) is NaN or ±Inf. */
function assertFiniteRows(data: Float32Array, d: number, start: number, source: string): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) {
      // v − v is NaN exactly for NaN and ±Inf: one subtraction per element on the hot path.
      throw new Error(`${source}: row ${start + Math.floor(i / d)} contains ${v} at column ${i % d}; NaN/Inf activations are rejected`);
    }
  }
}

/**
 * Opens a `.npy` ([N, d], float32/float16/float64, C order) or safetensors file (its single 2-D tensor, or the
 * tensor named after `#`). Only the header is read now; `readRows` reads on demand. Call `close()` when done.
 */
export async function openActivationFile(spec: string): Promise<ActivationFile> {
  const { path, name } = await splitSpec(spec);
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new Error(`${path}: cannot open activation file (${(e as Error).message})`);
  }
  try {
    const { size } = await fh.stat();
    const magic = await readExactly(fh, 0, Math.min(size, 6), path);
    const isNpy = magic.byteLength === 6 && magic[0] === 0x93 && Buffer.from(magic.subarray(1)).toString('latin1') === 'NUMPY';
    return isNpy ? await openNpy(fh, path, name) : await openSafetensors(fh, path, name);
  } catch (e) {
    await fh.close();
    throw e;
  }
}

async function openNpy(fh: FileHandle, path: string, name: string | undefined): Promise<ActivationFile> {
  if (name !== undefined) throw new Error(`${path}: '#${name}' selects a tensor in a safetensors file, but this is a .npy file`);
  const h = await readNpyHeaderFrom(fh, path);
  if (h.shape.length !== 2) throw new Error(`${path}: activations must be a 2-D array [N, d], got shape [${h.shape.join(', ')}]`);
  const [rows, d] = h.shape as [number, number];
  return makeFile(fh, path, undefined, h.dtype, rows, d, (s, c) => readNpyRowsFrom(fh, h, s, c, path));
}

async function openSafetensors(fh: FileHandle, path: string, name: string | undefined): Promise<ActivationFile> {
  const header = await readSafetensorsHeaderFrom(fh, path);
  let info;
  if (name !== undefined) info = findTensor(header, name, path);
  else {
    const twoD = header.tensors.filter((t) => t.shape.length === 2);
    if (twoD.length !== 1) {
      const list = header.tensors.map((t) => `${t.name} [${t.shape.join(', ')}]`).join(', ') || 'none';
      throw new Error(`${path}: expected exactly one 2-D tensor, found ${twoD.length} (${list}); pick one with ${path}#NAME`);
    }
    info = twoD[0]!;
  }
  if (info.shape.length !== 2) throw new Error(`${path}#${info.name}: activations must be 2-D [N, d], got shape [${info.shape.join(', ')}]`);
  const [rows, d] = info.shape as [number, number];
  const chosen = info;
  return makeFile(fh, path, chosen.name, safetensorsFloatDtype(chosen.dtype), rows, d, (s, c) => readTensorRows(fh, header, chosen, s, c, path));
}

function makeFile(
  fh: FileHandle,
  path: string,
  tensorName: string | undefined,
  dtype: FloatDtype,
  rows: number,
  d: number,
  read: (start: number, count: number) => Promise<Float32Array>,
): ActivationFile {
  if (rows < 1 || d < 1) throw new Error(`${path}: activations must have at least one row and one column, got [${rows}, ${d}]`);
  const source = tensorName === undefined ? path : `${path}#${tensorName}`;
  return {
    path,
    tensorName,
    dtype,
    rows,
    d,
    async readRows(start, count) {
      const data = await read(start, count);
      assertFiniteRows(data, d, start, source);
      return data;
    },
    close: () => fh.close(),
  };
}

/** Sequential pass over a source in blocks of up to `blockRows` rows (for eval/encode over a whole file). */
export async function* iterateRows(source: RowSource, blockRows: number): AsyncGenerator<{ start: number; data: Float32Array }> {
  if (!Number.isSafeInteger(blockRows) || blockRows < 1) throw new Error(`iterateRows: blockRows must be a positive integer, got ${blockRows}`);
  for (let start = 0; start < source.rows; start += blockRows) {
    yield { start, data: await source.readRows(start, Math.min(blockRows, source.rows - start)) };
  }
}

/**
 * `n` distinct rows drawn uniformly without replacement (all rows if n ≥ rows), returned in file order as an
 * [n, d] tensor. Floyd's algorithm keeps memory O(n); consecutive picks are read together.
 */
export async function sampleRows(source: RowSource, n: number, seed: number): Promise<Tensor> {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`sampleRows: n must be a positive integer, got ${n}`);
  const m = Math.min(n, source.rows);
  const rng = new Rng(seed);
  const picked = new Set<number>();
  for (let j = source.rows - m; j < source.rows; j++) {
    const t = rng.int(j + 1);
    picked.add(picked.has(t) ? j : t);
  }
  const idx = Float64Array.from(picked).sort();
  const out = new Float32Array(m * source.d);
  for (let i = 0; i < m; ) {
    let run = 1;
    while (i + run < m && idx[i + run] === idx[i]! + run) run++;
    out.set(await source.readRows(idx[i]!, run), i * source.d);
    i += run;
  }
  return { data: out, shape: [m, source.d] };
}

// ---------------------------------------------------------------------------------------------------------------
// Shuffled batch stream

/** Where a stream is, plus everything that determines its row order (checked on resume). JSON-serialisable. */
export interface StreamPosition {
  /** Completed passes over the data. */
  readonly epoch: number;
  /** Rows already emitted in the current epoch. */
  readonly offset: number;
  readonly rows: number;
  readonly seed: number;
  readonly bufferRows: number;
  readonly chunkRows: number;
}

export interface ShuffledBatchStreamOptions {
  batchSize: number;
  seed: number;
  /** Rows held in memory at once (the shuffle window). Clamped to the number of rows. */
  bufferRows: number;
  /** Rows per contiguous read; the buffer mixes bufferRows/chunkRows random chunks. Default: bufferRows/16. */
  chunkRows?: number;
  /** Continue exactly where a stream with the same data and settings was (from its `getPosition()`). */
  resumeFrom?: StreamPosition;
}

/** 32-bit hash of a list of non-negative integers (< 2^53), for deriving independent per-epoch/per-group seeds. */
function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    for (const word of [p >>> 0, Math.floor(p / 4294967296) >>> 0]) {
      h = fmix32((h ^ word) >>> 0);
      h = (Math.imul(h, 0x9e3779b1) + 0x7f4a7c15) >>> 0;
    }
  }
  return fmix32(h);
}

/** MurmurHash3's 32-bit finaliser: a bijective avalanche mix. */
function fmix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * A seeded pseudo-random permutation of [0, n) evaluated index by index in O(1) memory: a balanced Feistel network
 * on 2h bits (2^2h ≥ n) with cycle walking (re-apply until the result is < n, which stays a bijection on [0, n)).
 * This is what keeps the stream's memory independent of the file size: no array of chunk indices.
 */
class IndexPermutation {
  private readonly half: number;
  private readonly keys: number[];
  constructor(
    private readonly n: number,
    seed: number,
  ) {
    const bits = Math.max(1, Math.ceil(Math.log2(Math.max(n, 2))));
    const h = Math.ceil(bits / 2);
    this.half = 2 ** h;
    const rng = new Rng(seed);
    this.keys = Array.from({ length: 6 }, () => rng.nextU32());
  }
  at(i: number): number {
    if (this.n <= 1) return i;
    let v = i;
    do v = this.encrypt(v);
    while (v >= this.n);
    return v;
  }
  private encrypt(v: number): number {
    const mask = this.half - 1;
    let l = Math.floor(v / this.half);
    let r = v % this.half;
    for (const k of this.keys) {
      const f = fmix32((r ^ k) >>> 0) & mask;
      [l, r] = [r, (l ^ f) >>> 0];
    }
    return l * this.half + r;
  }
}

/**
 * Infinite stream of shuffled [batchSize, d] batches over a row source, with memory bounded by `bufferRows` rows
 * whatever the file size. Each epoch: rotate the row index space by a random offset, cut it into contiguous chunks
 * of `chunkRows`, visit the chunks in a seeded random order (the last, partial chunk last), load them `bufferRows`
 * at a time and emit those rows in a seeded random order. Every row appears exactly once per epoch, and the order
 * is a pure function of (seed, epoch, position), so `getPosition()` → `resumeFrom` continues exactly.
 * Calls to `next()` are serialised; batches may span epoch boundaries.
 */
export class ShuffledBatchStream implements AsyncIterable<Tensor> {
  readonly batchSize: number;
  readonly bufferRows: number;
  readonly chunkRows: number;
  private readonly rows: number;
  private readonly d: number;
  private readonly seed: number;
  private readonly chunksPerGroup: number;
  private readonly fullChunks: number;
  private readonly tailRows: number;
  private readonly buffer: Float32Array;
  private readonly order: Uint32Array;
  private epoch = 0;
  private offset = 0;
  /** Which (epoch, group) the buffer holds, and how many rows. */
  private loaded: { epoch: number; group: number; rows: number } | null = null;
  /** Per-epoch state derived from the seed. */
  private epochState: { epoch: number; rotation: number; perm: IndexPermutation } | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly source: RowSource,
    opts: ShuffledBatchStreamOptions,
  ) {
    const posInt = (v: unknown, what: string) => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new Error(`ShuffledBatchStream: ${what} must be a positive integer, got ${v}`);
      return v;
    };
    this.rows = posInt(source.rows, 'source.rows');
    this.d = posInt(source.d, 'source.d');
    this.batchSize = posInt(opts.batchSize, 'batchSize');
    if (!Number.isSafeInteger(opts.seed)) throw new Error(`ShuffledBatchStream: seed must be an integer, got ${opts.seed}`);
    this.seed = opts.seed;
    this.bufferRows = Math.min(posInt(opts.bufferRows, 'bufferRows'), this.rows);
    this.chunkRows = posInt(opts.chunkRows ?? Math.max(1, Math.floor(this.bufferRows / 16)), 'chunkRows');
    if (this.chunkRows > this.bufferRows) throw new Error(`ShuffledBatchStream: chunkRows (${this.chunkRows}) exceeds bufferRows (${this.bufferRows})`);
    this.chunksPerGroup = Math.floor(this.bufferRows / this.chunkRows);
    this.fullChunks = Math.floor(this.rows / this.chunkRows);
    this.tailRows = this.rows - this.fullChunks * this.chunkRows;
    this.buffer = new Float32Array(this.chunksPerGroup * this.chunkRows * this.d);
    this.order = new Uint32Array(this.chunksPerGroup * this.chunkRows);
    if (opts.resumeFrom !== undefined) this.resume(opts.resumeFrom);
  }

  private resume(p: StreamPosition): void {
    const mine = this.settings();
    for (const k of ['rows', 'seed', 'bufferRows', 'chunkRows'] as const) {
      if (p[k] !== mine[k]) throw new Error(`ShuffledBatchStream: cannot resume, ${k} was ${p[k]} but is now ${mine[k]} (same data and settings needed)`);
    }
    if (!Number.isSafeInteger(p.epoch) || p.epoch < 0 || !Number.isSafeInteger(p.offset) || p.offset < 0 || p.offset >= this.rows) {
      throw new Error(`ShuffledBatchStream: invalid resume position epoch=${p.epoch} offset=${p.offset}`);
    }
    this.epoch = p.epoch;
    this.offset = p.offset;
  }

  private settings() {
    return { rows: this.rows, seed: this.seed, bufferRows: this.bufferRows, chunkRows: this.chunkRows };
  }

  /** The position of the next row to be emitted (take it between `next()` calls). */
  getPosition(): StreamPosition {
    return { epoch: this.epoch, offset: this.offset, ...this.settings() };
  }

  /** Bytes held by the stream's buffers (independent of the number of rows in the source). */
  get bufferBytes(): number {
    return this.buffer.byteLength + this.order.byteLength;
  }

  /** The next [batchSize, d] batch. */
  next(): Promise<Tensor> {
    const result = this.queue.then(() => this.nextBatch());
    this.queue = result.catch(() => undefined);
    return result;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Tensor> {
    for (;;) yield await this.next();
  }

  private async nextBatch(): Promise<Tensor> {
    const { d } = this;
    const out = new Float32Array(this.batchSize * d);
    const groupSpan = this.chunksPerGroup * this.chunkRows; // rows in every group but possibly the last
    let filled = 0;
    while (filled < this.batchSize) {
      const group = Math.floor(this.offset / groupSpan);
      await this.ensureLoaded(this.epoch, group);
      const j = this.offset - group * groupSpan;
      const take = Math.min(this.batchSize - filled, this.loaded!.rows - j);
      for (let t = 0; t < take; t++) {
        const src = this.order[j + t]! * d;
        out.set(this.buffer.subarray(src, src + d), (filled + t) * d);
      }
      filled += take;
      this.offset += take;
      if (this.offset === this.rows) {
        this.epoch++;
        this.offset = 0;
      }
    }
    return { data: out, shape: [this.batchSize, d] };
  }

  private epochInfo(epoch: number) {
    if (this.epochState?.epoch !== epoch) {
      const rotation = new Rng(mixSeed(this.seed, epoch, 1)).int(this.rows);
      this.epochState = { epoch, rotation, perm: new IndexPermutation(this.fullChunks, mixSeed(this.seed, epoch, 2)) };
    }
    return this.epochState;
  }

  /** Fills the buffer with group `group` of `epoch` and shuffles its row order. */
  private async ensureLoaded(epoch: number, group: number): Promise<void> {
    if (this.loaded?.epoch === epoch && this.loaded.group === group) return;
    this.loaded = null; // the buffer is about to be overwritten
    const { rotation, perm } = this.epochInfo(epoch);
    const totalChunks = this.fullChunks + (this.tailRows > 0 ? 1 : 0);
    const first = group * this.chunksPerGroup;
    const last = Math.min(first + this.chunksPerGroup, totalChunks);
    let filled = 0;
    for (let p = first; p < last; p++) {
      // Position p visits chunk perm(p); the partial tail chunk (index fullChunks) always comes last.
      const chunk = p < this.fullChunks ? perm.at(p) : this.fullChunks;
      const len = chunk < this.fullChunks ? this.chunkRows : this.tailRows;
      await this.readRotated((rotation + chunk * this.chunkRows) % this.rows, len, filled);
      filled += len;
    }
    const order = this.order.subarray(0, filled);
    for (let i = 0; i < filled; i++) order[i] = i;
    new Rng(mixSeed(this.seed, epoch, 3, group)).shuffle(order);
    this.loaded = { epoch, group, rows: filled };
  }

  /** Reads `count` rows starting at file row `start`, wrapping past the end, into buffer row `at`. */
  private async readRotated(start: number, count: number, at: number): Promise<void> {
    const first = Math.min(count, this.rows - start);
    this.buffer.set(await this.readChecked(start, first), at * this.d);
    if (first < count) this.buffer.set(await this.readChecked(0, count - first), (at + first) * this.d);
  }

  private async readChecked(start: number, count: number): Promise<Float32Array> {
    const data = await this.source.readRows(start, count);
    if (data.length !== count * this.d) {
      throw new Error(`ShuffledBatchStream: source returned ${data.length} values for ${count} rows of ${this.d}`);
    }
    return data;
  }
}
