import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import { openActivationFile, sampleRows, ShuffledBatchStream, type RowSource, type StreamPosition } from '../src/io/activations.js';
import { f32ToF16Array } from '../src/io/float16.js';
import { npyHeaderBytes, writeNpyFile } from '../src/io/npy.js';
import { writeSafetensorsFile } from '../src/io/safetensors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'saelab-acts-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** In-memory source whose row r is [hi(r), lo(r), 0.5, ...] (exact in float32 even for huge r); records reads. */
function indexSource(rows: number, d = 3): RowSource & { reads: [number, number][] } {
  const reads: [number, number][] = [];
  return {
    rows,
    d,
    reads,
    async readRows(start, count) {
      if (start < 0 || count < 0 || start + count > rows) throw new Error(`bad read ${start}+${count}`);
      reads.push([start, count]);
      const out = new Float32Array(count * d).fill(0.5);
      for (let i = 0; i < count; i++) {
        out[i * d] = Math.floor((start + i) / 2 ** 20);
        out[i * d + 1] = (start + i) % 2 ** 20;
      }
      return out;
    },
  };
}
const rowIds = (batch: { data: Float32Array; shape: readonly number[] }) =>
  Array.from({ length: batch.shape[0]! }, (_, i) => batch.data[i * batch.shape[1]!]! * 2 ** 20 + batch.data[i * batch.shape[1]! + 1]!);

async function take(stream: ShuffledBatchStream, batches: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < batches; i++) ids.push(...rowIds(await stream.next()));
  return ids;
}

describe('activation files', () => {
  const rng = new Rng(11);
  const data = rng.fillNormal(new Float32Array(37 * 5));

  it('reads .npy (float32 and float16) and safetensors row ranges', async () => {
    const npy = join(dir, 'a.npy');
    await writeNpyFile(npy, { data, shape: [37, 5] });
    const f = await openActivationFile(npy);
    expect([f.rows, f.d, f.dtype, f.path]).toEqual([37, 5, 'float32', npy]);
    expect(await f.readRows(3, 4)).toEqual(data.slice(15, 35));
    await f.close();

    // float16 .npy: header says '<f2'; rows come back widened.
    const halfBits = f32ToF16Array(data);
    const header = npyHeaderBytes([37, 5]);
    const text = Buffer.from(header).toString('latin1').replace("'<f4'", "'<f2'");
    const h16 = join(dir, 'h.npy');
    await writeFile(h16, Buffer.concat([Buffer.from(text, 'latin1'), Buffer.from(halfBits.buffer)]));
    const g = await openActivationFile(h16);
    expect(g.dtype).toBe('float16');
    const rows = await g.readRows(30, 7);
    for (let i = 0; i < rows.length; i++) expect(Math.abs(rows[i]! - data[150 + i]!)).toBeLessThanOrEqual(Math.abs(data[150 + i]!) * 2 ** -11 + 2 ** -25);
    await g.close();

    const st = join(dir, 'one.safetensors');
    await writeSafetensorsFile(st, { acts: { data, shape: [37, 5] }, scale: { data: Float32Array.of(2), shape: [1] } });
    const s = await openActivationFile(st);
    expect([s.rows, s.d, s.tensorName]).toEqual([37, 5, 'acts']);
    expect(await s.readRows(36, 1)).toEqual(data.slice(180));
    await s.close();
  });

  it('picks a named safetensors tensor with path#name and explains ambiguity', async () => {
    const st = join(dir, 'two.safetensors');
    await writeSafetensorsFile(st, { x: { data, shape: [37, 5] }, y: { data: data.slice(0, 10), shape: [2, 5] } });
    await expect(openActivationFile(st)).rejects.toThrow(/exactly one 2-D tensor, found 2 \(x \[37, 5\], y \[2, 5\]\).*#NAME/);
    const y = await openActivationFile(`${st}#y`);
    expect(y.rows).toBe(2);
    expect(await y.readRows(0, 2)).toEqual(data.slice(0, 10));
    await y.close();
    await expect(openActivationFile(`${st}#z`)).rejects.toThrow(/no tensor named 'z'/);
    await expect(openActivationFile(join(dir, 'missing.npy'))).rejects.toThrow(/cannot open activation file/);
    const one = join(dir, 'vec.npy');
    await writeNpyFile(one, { data, shape: [185] });
    await expect(openActivationFile(one)).rejects.toThrow(/must be a 2-D array/);
  });

  it('rejects NaN and Inf rows naming the file and row', async () => {
    const bad = data.slice();
    bad[5 * 22 + 3] = Number.NaN;
    bad[5 * 30] = -Infinity;
    const p = join(dir, 'nan.npy');
    await writeNpyFile(p, { data: bad, shape: [37, 5] });
    const f = await openActivationFile(p);
    expect((await f.readRows(0, 22)).length).toBe(110);
    await expect(f.readRows(20, 5)).rejects.toThrow(`${p}: row 22 contains NaN at column 3`);
    await expect(f.readRows(23, 10)).rejects.toThrow(`${p}: row 30 contains -Infinity at column 0`);
    // The error reaches a training loop through the stream too.
    const stream = new ShuffledBatchStream(f, { batchSize: 37, seed: 1, bufferRows: 37 });
    await expect(stream.next()).rejects.toThrow(/row (22|30) contains/);
    await f.close();
  });
});

describe('ShuffledBatchStream', () => {
  it('emits every row exactly once per epoch, in a different order each epoch', async () => {
    const rows = 1003; // not a multiple of the chunk size: exercises the partial chunk and the wrap-around read
    const stream = new ShuffledBatchStream(indexSource(rows), { batchSize: 64, seed: 5, bufferRows: 200, chunkRows: 30 });
    const ids = await take(stream, Math.ceil((3 * rows) / 64));
    const epochs = [0, 1, 2].map((e) => ids.slice(e * rows, (e + 1) * rows));
    for (const ep of epochs) expect([...ep].sort((a, b) => a - b)).toEqual(Array.from({ length: rows }, (_, i) => i));
    expect(epochs[0]).not.toEqual(epochs[1]);
    // Shuffled, not sequential: the first batch mixes rows from several chunks.
    const chunks = new Set(ids.slice(0, 64).map((r) => Math.floor(r / 30)));
    expect(chunks.size).toBeGreaterThan(3);
    // Another seed, another order.
    const other = new ShuffledBatchStream(indexSource(rows), { batchSize: 64, seed: 6, bufferRows: 200, chunkRows: 30 });
    expect(await take(other, 4)).not.toEqual(ids.slice(0, 256));
  });

  it('resumes exactly from getPosition(), within and across epochs', async () => {
    const opts = { batchSize: 48, seed: 9, bufferRows: 128, chunkRows: 16 };
    const reference = await take(new ShuffledBatchStream(indexSource(500), opts), 40);
    for (const k of [0, 1, 7, 10, 11, 25]) {
      const a = new ShuffledBatchStream(indexSource(500), opts);
      await take(a, k);
      const pos = JSON.parse(JSON.stringify(a.getPosition())) as StreamPosition;
      const b = new ShuffledBatchStream(indexSource(500), { ...opts, resumeFrom: pos });
      expect(await take(b, 40 - k)).toEqual(reference.slice(k * 48));
    }
    // The row order does not depend on the batch size, so resuming with another batch size continues the rows.
    const a = new ShuffledBatchStream(indexSource(500), opts);
    await take(a, 3);
    const c = new ShuffledBatchStream(indexSource(500), { ...opts, batchSize: 10, resumeFrom: a.getPosition() });
    expect(await take(c, 5)).toEqual(reference.slice(144, 194));
    expect(() => new ShuffledBatchStream(indexSource(501), { ...opts, resumeFrom: a.getPosition() })).toThrow(/rows was 500 but is now 501/);
    expect(() => new ShuffledBatchStream(indexSource(500), { ...opts, seed: 10, resumeFrom: a.getPosition() })).toThrow(/seed was 9/);
  });

  it('works from a real file, concurrent next() calls included', async () => {
    const rows = 300;
    const data = new Float32Array(rows * 2);
    for (let r = 0; r < rows; r++) data[2 * r + 1] = r; // row r = [0, r] (same id encoding as indexSource)
    const p = join(dir, 'ids.npy');
    await writeNpyFile(p, { data, shape: [rows, 2] });
    const f = await openActivationFile(p);
    const stream = new ShuffledBatchStream(f, { batchSize: 50, seed: 3, bufferRows: 64 });
    const batches = await Promise.all(Array.from({ length: 6 }, () => stream.next()));
    const ids = batches.flatMap(rowIds);
    expect([...ids].sort((a, b) => a - b)).toEqual(Array.from({ length: rows }, (_, i) => i));
    const again = new ShuffledBatchStream(indexSource(rows, 2), { batchSize: 50, seed: 3, bufferRows: 64 });
    expect(await take(again, 6)).toEqual(ids); // same order from a file as from memory
    await f.close();
  });

  it('uses memory bounded by bufferRows whatever the number of rows', async () => {
    const opts = { batchSize: 32, seed: 1, bufferRows: 256, chunkRows: 16 };
    const small = indexSource(1000, 4);
    const huge = indexSource(2 ** 40, 4); // a terabyte-row source: any per-row or per-chunk array would fail
    const a = new ShuffledBatchStream(small, opts);
    const b = new ShuffledBatchStream(huge, opts);
    expect(b.bufferBytes).toBe(a.bufferBytes);
    expect(b.bufferBytes).toBe(256 * 4 * 4 + 256 * 4);
    const ids = await take(b, 20);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((r) => Number.isInteger(r) && r >= 0 && r < 2 ** 40)).toBe(true);
    // Reads are whole chunks, and only as many as one buffer needs until the buffer is used up.
    expect(huge.reads.every(([, c]) => c <= 16)).toBe(true);
    expect(huge.reads.reduce((s, [, c]) => s + c, 0)).toBe(3 * 256);
    // Chunks come from all over the file, not just its start.
    expect(Math.max(...huge.reads.map(([s]) => s))).toBeGreaterThan(2 ** 39);
    const pos = b.getPosition();
    const resumed = new ShuffledBatchStream(indexSource(2 ** 40, 4), { ...opts, resumeFrom: pos });
    expect(await take(resumed, 2)).toEqual(await take(b, 2));
  });

  it('validates its options', () => {
    const s = indexSource(100);
    expect(() => new ShuffledBatchStream(s, { batchSize: 0, seed: 1, bufferRows: 10 })).toThrow(/batchSize must be a positive integer/);
    expect(() => new ShuffledBatchStream(s, { batchSize: 4, seed: 1, bufferRows: 10, chunkRows: 20 })).toThrow(/chunkRows \(20\) exceeds bufferRows \(10\)/);
    expect(() => new ShuffledBatchStream(s, { batchSize: 4, seed: 1.5, bufferRows: 10 })).toThrow(/seed must be an integer/);
  });
});

describe('sampleRows', () => {
  it('draws distinct rows uniformly and returns their contents', async () => {
    const src = indexSource(10_000);
    const t = await sampleRows(src, 500, 42);
    expect(t.shape).toEqual([500, 3]);
    const ids = rowIds(t);
    expect(new Set(ids).size).toBe(500);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(ids.every((r) => r >= 0 && r < 10_000)).toBe(true);
    // Roughly uniform: each half of the file gets about half the sample (binomial sd ≈ 11).
    const low = ids.filter((r) => r < 5000).length;
    expect(Math.abs(low - 250)).toBeLessThan(60);
    expect(rowIds(await sampleRows(src, 500, 42))).toEqual(ids);
    expect(rowIds(await sampleRows(indexSource(7), 50, 1))).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });
});
