/**
 * The activation store: a folder of row shards plus a zod-validated `manifest.json`.
 *
 *   DIR/manifest.json          what the rows are (source, site, d, dtype, tokenizer, corpus split, context length),
 *                              the shard list with a SHA-256 per shard, and the normalisation scale C
 *                              (C = sqrt(E‖x‖²) so that E‖x/C‖² = 1 over the stored rows).
 *   DIR/shard-00000.npy ...    [rows_i, d] little-endian float32 ('<f4') or float16 ('<f2') NumPy arrays, C order,
 *                              so NumPy reads them directly (np.load).
 *
 * Reading: `openActivationStore(dir)` is a core `RowSource` over all shards in order (random access by row, a few
 * rows at a time, bounded memory). Every shard is checked against its manifest entry before its first rows are
 * returned — header shape/dtype, file size, SHA-256 — so a truncated or corrupted shard fails with its file named,
 * never silently wrong data. Shuffled batches with exact resume: `storeBatchStream` (core's ShuffledBatchStream,
 * which mixes contiguous chunks drawn from all shards).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import {
  type ActivationFile,
  type RowSource,
  type ShuffledBatchStreamOptions,
  ShuffledBatchStream,
  f32ToF16Array,
  float32Bytes,
  npyHeaderBytes,
  openActivationFile,
  writeFileAtomic,
} from '@saelab/core';

export const MANIFEST_FILE = 'manifest.json';
export const STORE_FORMAT = 'saelab-activations';

export const ShardEntrySchema = z.object({
  file: z.string().regex(/^[A-Za-z0-9._-]+$/, 'shard file names must be plain names inside the store folder'),
  rows: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ShardEntry = z.infer<typeof ShardEntrySchema>;

export const ManifestSchema = z.object({
  format: z.literal(STORE_FORMAT),
  version: z.literal(1),
  /** Where the rows came from: `llama2c:PATH`, `onnx:PATH`, `import:PATH`, ... */
  source: z.string(),
  /** Hook site, e.g. blocks.2.hook_resid_post. */
  site: z.string(),
  d: z.number().int().positive(),
  dtype: z.enum(['float32', 'float16']),
  /** Tokenizer spec ("gpt2", "llama2c:PATH") or "unknown" for imported rows. */
  tokenizer: z.string(),
  corpus: z.object({ name: z.string(), split: z.string() }),
  contextLength: z.number().int().positive().nullable(),
  /** Total stored rows (= sum of shard rows). */
  rows: z.number().int().nonnegative(),
  shards: z.array(ShardEntrySchema),
  /** Normalisation: C = sqrt(meanSquaredNorm), so E‖x/C‖² = 1. */
  scale: z.object({ C: z.number().positive(), meanSquaredNorm: z.number().nonnegative(), rows: z.number().int().nonnegative() }).nullable(),
  /** False while a harvest is still running (or was interrupted); the reader refuses incomplete stores by default. */
  complete: z.boolean(),
  /** Harvest bookkeeping for exact resume (opaque to readers). */
  harvest: z.record(z.string(), z.unknown()).optional(),
});
export type Manifest = z.infer<typeof ManifestSchema>;

export function readManifest(dir: string): Manifest {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) throw new Error(`${path}: no activation-store manifest (is ${dir} an activation store?)`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: manifest is not valid JSON (${(e as Error).message})`);
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`${path}: invalid manifest: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const m = parsed.data;
  const sum = m.shards.reduce((s, x) => s + x.rows, 0);
  if (sum !== m.rows) throw new Error(`${path}: manifest says ${m.rows} rows but its shards hold ${sum}`);
  return m;
}

export async function writeManifest(dir: string, m: Manifest): Promise<void> {
  await writeFileAtomic(join(dir, MANIFEST_FILE), JSON.stringify(ManifestSchema.parse(m), null, 1) + '\n');
}

/** The .npy bytes of a [rows, d] shard in the given dtype. */
export function encodeShard(data: Float32Array, d: number, dtype: 'float32' | 'float16'): Uint8Array {
  const rows = data.length / d;
  if (!Number.isInteger(rows)) throw new Error(`encodeShard: ${data.length} values is not a whole number of rows of ${d}`);
  const header = npyHeaderBytes([rows, d]);
  // core writes '<f4' headers; a float16 shard differs only in the descr, which has the same length.
  if (dtype === 'float16') header.set(Buffer.from("'<f2'", 'latin1'), Buffer.from(header).indexOf("'<f4'", 0, 'latin1'));
  const body = dtype === 'float32' ? float32Bytes(data) : new Uint8Array(f32ToF16Array(data).buffer);
  const out = new Uint8Array(header.byteLength + body.byteLength);
  out.set(header, 0);
  out.set(body, header.byteLength);
  return out;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** SHA-256 of a file, streamed (bounded memory). */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Writes one shard atomically and returns its manifest entry. */
export async function writeShard(dir: string, index: number, data: Float32Array, d: number, dtype: 'float32' | 'float16'): Promise<ShardEntry> {
  await mkdir(dir, { recursive: true });
  const file = `shard-${String(index).padStart(5, '0')}.npy`;
  const bytes = encodeShard(data, d, dtype);
  await writeFileAtomic(join(dir, file), bytes);
  return { file, rows: data.length / d, sha256: sha256Hex(bytes) };
}

/** Running E‖x‖² (float64) for the normalisation constant. */
export class ScaleAccumulator {
  sumSq = 0;
  rows = 0;
  add(data: Float32Array, d: number): void {
    for (let i = 0; i < data.length; i++) this.sumSq += data[i]! * data[i]!;
    this.rows += data.length / d;
  }
  result(): Manifest['scale'] {
    if (this.rows === 0) return null;
    const meanSquaredNorm = this.sumSq / this.rows;
    return { C: Math.sqrt(meanSquaredNorm) || 1, meanSquaredNorm, rows: this.rows };
  }
}

export interface OpenStoreOptions {
  /** Verify each shard's SHA-256 before first use (default true). */
  verify?: boolean;
  /** Open a store whose harvest has not finished (default false). */
  allowIncomplete?: boolean;
  /** Shard files kept open at once (default 4). */
  maxOpenShards?: number;
}

/** An activation store opened for reading: a RowSource over all shards, in order. */
export class ActivationStore implements RowSource {
  readonly rows: number;
  readonly d: number;
  private readonly starts: number[];
  private readonly open = new Map<number, Promise<ActivationFile>>();
  private readonly verified = new Set<number>();

  constructor(
    readonly dir: string,
    readonly manifest: Manifest,
    private readonly opts: OpenStoreOptions = {},
  ) {
    this.rows = manifest.rows;
    this.d = manifest.d;
    this.starts = [];
    let s = 0;
    for (const sh of manifest.shards) {
      this.starts.push(s);
      s += sh.rows;
    }
  }

  /** Normalisation constant C (E‖x/C‖² = 1); 1 when unknown. */
  get scale(): number {
    return this.manifest.scale?.C ?? 1;
  }

  private shardOf(row: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= row) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private async shard(i: number): Promise<ActivationFile> {
    let f = this.open.get(i);
    if (!f) {
      f = this.openShard(i);
      this.open.set(i, f);
      f.catch(() => this.open.delete(i));
      const max = this.opts.maxOpenShards ?? 4;
      if (this.open.size > max) {
        const [oldest, p] = this.open.entries().next().value as [number, Promise<ActivationFile>];
        this.open.delete(oldest);
        p.then((h) => h.close()).catch(() => undefined);
      }
    }
    return f;
  }

  private async openShard(i: number): Promise<ActivationFile> {
    const entry = this.manifest.shards[i]!;
    const path = join(this.dir, entry.file);
    if (!existsSync(path)) throw new Error(`${path}: shard listed in the manifest is missing`);
    if ((this.opts.verify ?? true) && !this.verified.has(i)) {
      const hash = await sha256File(path);
      if (hash !== entry.sha256) throw new Error(`${path}: shard is corrupted (SHA-256 ${hash.slice(0, 12)}… but the manifest records ${entry.sha256.slice(0, 12)}…)`);
      this.verified.add(i);
    }
    let f: ActivationFile;
    try {
      f = await openActivationFile(path);
    } catch (e) {
      throw new Error(`${path}: unreadable shard: ${(e as Error).message}`);
    }
    if (f.rows !== entry.rows || f.d !== this.d || f.dtype !== this.manifest.dtype) {
      await f.close();
      throw new Error(`${path}: shard holds [${f.rows}, ${f.d}] ${f.dtype} but the manifest says [${entry.rows}, ${this.d}] ${this.manifest.dtype}`);
    }
    return f;
  }

  async readRows(start: number, count: number): Promise<Float32Array> {
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > this.rows) {
      throw new Error(`${this.dir}: rows [${start}, ${start + count}) outside the store's ${this.rows} rows`);
    }
    const out = new Float32Array(count * this.d);
    let done = 0;
    while (done < count) {
      const row = start + done;
      const i = this.shardOf(row);
      const local = row - this.starts[i]!;
      const take = Math.min(count - done, this.manifest.shards[i]!.rows - local);
      out.set(await (await this.shard(i)).readRows(local, take), done * this.d);
      done += take;
    }
    return out;
  }

  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((p) => p.then((f) => f.close()).catch(() => undefined)));
  }
}

export function openActivationStore(dir: string, opts: OpenStoreOptions = {}): ActivationStore {
  const m = readManifest(dir);
  if (!m.complete && !opts.allowIncomplete) {
    throw new Error(`${join(dir, MANIFEST_FILE)}: the harvest into this store has not finished (run the harvest again to resume it)`);
  }
  if (m.rows === 0) throw new Error(`${dir}: activation store has no rows`);
  return new ActivationStore(dir, m, opts);
}

/** Seeded, bounded-memory, exactly resumable shuffled batches over a store (mixing all shards). */
export function storeBatchStream(store: ActivationStore, opts: ShuffledBatchStreamOptions): ShuffledBatchStream {
  return new ShuffledBatchStream(store, opts);
}

export const ImportOptionsSchema = z.object({
  /** `.npy` files or safetensors files (`file#tensor` picks a tensor), each [N, d]; concatenated in order. */
  inputs: z.array(z.string().min(1)).min(1),
  out: z.string().min(1),
  site: z.string().default('unknown'),
  source: z.string().optional(),
  tokenizer: z.string().default('unknown'),
  dtype: z.enum(['float32', 'float16']).default('float32'),
  shardRows: z.number().int().positive().default(1 << 17),
});
export type ImportOptions = z.input<typeof ImportOptionsSchema>;

/**
 * Imports activations produced elsewhere (.npy / safetensors, float32/float16/bfloat16/float64, [N, d]) into a
 * store, validating shape, dtype and finiteness (core's reader rejects NaN/Inf rows naming file and row).
 * Reads a block at a time, so files larger than memory import fine.
 */
export async function importActivations(options: ImportOptions): Promise<Manifest> {
  const o = ImportOptionsSchema.parse(options);
  const shards: ShardEntry[] = [];
  const scale = new ScaleAccumulator();
  let d = -1;
  let pending: Float32Array[] = [];
  let pendingRows = 0;
  const flush = async () => {
    if (pendingRows === 0) return;
    const data = new Float32Array(pendingRows * d);
    let off = 0;
    for (const p of pending) {
      data.set(p, off);
      off += p.length;
    }
    shards.push(await writeShard(o.out, shards.length, data, d, o.dtype));
    pending = [];
    pendingRows = 0;
  };
  for (const input of o.inputs) {
    const f = await openActivationFile(input);
    try {
      if (d === -1) d = f.d;
      else if (f.d !== d) throw new Error(`${input}: has d=${f.d} but earlier inputs have d=${d}`);
      for (let start = 0; start < f.rows; ) {
        const take = Math.min(o.shardRows - pendingRows, f.rows - start);
        const rows = await f.readRows(start, take);
        scale.add(rows, d);
        pending.push(rows);
        pendingRows += take;
        start += take;
        if (pendingRows === o.shardRows) await flush();
      }
    } finally {
      await f.close();
    }
  }
  await flush();
  const manifest: Manifest = {
    format: STORE_FORMAT,
    version: 1,
    source: o.source ?? `import:${o.inputs.join(',')}`,
    site: o.site,
    d,
    dtype: o.dtype,
    tokenizer: o.tokenizer,
    corpus: { name: 'unknown', split: 'unknown' },
    contextLength: null,
    rows: scale.rows,
    shards,
    scale: scale.result(),
    complete: true,
  };
  await writeManifest(o.out, manifest);
  return manifest;
}
