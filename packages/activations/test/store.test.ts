import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng, encodeNpy, encodeSafetensors } from '@saelab/core';
import {
  type Manifest,
  type OpenStoreOptions,
  STORE_FORMAT,
  ScaleAccumulator,
  importActivations,
  openActivationStore,
  readManifest,
  storeBatchStream,
  writeManifest,
  writeShard,
} from '../src/store.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'store-'));

/** Open, read rows, close (so no file handle is left to the garbage collector). */
async function readFrom(dir: string, start: number, count: number, opts: OpenStoreOptions = {}): Promise<Float32Array> {
  const store = openActivationStore(dir, opts);
  try {
    return await store.readRows(start, count);
  } finally {
    await store.close();
  }
}

/** Writes `data` ([rows, d]) as shards of the given sizes; returns the directory. */
async function makeStore(data: Float32Array, d: number, shardRows: number[], dtype: 'float32' | 'float16' = 'float32'): Promise<string> {
  const dir = tmp();
  const shards = [];
  const scale = new ScaleAccumulator();
  let off = 0;
  for (const [i, r] of shardRows.entries()) {
    const part = data.slice(off * d, (off + r) * d);
    scale.add(part, d);
    shards.push(await writeShard(dir, i, part, d, dtype));
    off += r;
  }
  const m: Manifest = {
    format: STORE_FORMAT,
    version: 1,
    source: 'test',
    site: 'blocks.0.hook_resid_post',
    d,
    dtype,
    tokenizer: 'none',
    corpus: { name: 'none', split: 'train' },
    contextLength: 8,
    rows: off,
    shards,
    scale: scale.result(),
    complete: true,
  };
  await writeManifest(dir, m);
  return dir;
}

describe('activation store', () => {
  const d = 5;
  const rows = 103;
  const data = new Rng(1).fillNormal(new Float32Array(rows * d), 2);

  it('reads rows across shard boundaries exactly, with the normalisation scale E‖x/C‖² = 1', async () => {
    const dir = await makeStore(data, d, [40, 40, 23]);
    const store = openActivationStore(dir);
    expect(store.rows).toBe(rows);
    expect(Array.from(await store.readRows(35, 50))).toEqual(Array.from(data.subarray(35 * d, 85 * d)));
    expect(Array.from(await store.readRows(0, rows))).toEqual(Array.from(data));
    let s = 0;
    for (const v of data) s += (v / store.scale) ** 2;
    expect(s / rows).toBeCloseTo(1, 10);
    await store.close();
  });

  it('float16 shards round-trip within half precision', async () => {
    const dir = await makeStore(data, d, [50, 53], 'float16');
    const back = await readFrom(dir, 0, rows);
    for (let i = 0; i < data.length; i++) expect(Math.abs(back[i]! - data[i]!)).toBeLessThanOrEqual(Math.abs(data[i]!) * 2 ** -10 + 1e-7);
  });

  it('a corrupted or truncated shard fails with the file named', async () => {
    const dir = await makeStore(data, d, [50, 53]);
    const f = join(dir, 'shard-00001.npy');
    const bytes = readFileSync(f);
    bytes[bytes.length - 7] ^= 0x40;
    writeFileSync(f, bytes);
    const store = openActivationStore(dir);
    expect(Array.from(await store.readRows(0, 10))).toEqual(Array.from(data.subarray(0, 10 * d))); // shard 0 is fine
    await expect(store.readRows(45, 10)).rejects.toThrow(/shard-00001\.npy: shard is corrupted/);
    await store.close();
    truncateSync(f, bytes.length - 20);
    await expect(readFrom(dir, 60, 1)).rejects.toThrow(/shard-00001\.npy/);
    await expect(readFrom(dir, 60, 1, { verify: false })).rejects.toThrow(/shard-00001\.npy.*truncated/);
  });

  it('rejects invalid or incomplete manifests clearly', async () => {
    const dir = await makeStore(data, d, [103]);
    const m = readManifest(dir);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...m, d: -1 }));
    expect(() => openActivationStore(dir)).toThrow(/manifest.json: invalid manifest: d/);
    await writeManifest(dir, { ...m, complete: false });
    expect(() => openActivationStore(dir)).toThrow(/has not finished/);
    expect(() => openActivationStore(tmp())).toThrow(/no activation-store manifest/);
  });

  it('shuffled batches: every row once per epoch, bounded memory, exact resume', async () => {
    const dir = await makeStore(data, d, [30, 30, 30, 13]);
    const store = openActivationStore(dir);
    const opts = { batchSize: 7, seed: 3, bufferRows: 32, chunkRows: 4 };
    const s = storeBatchStream(store, opts);
    expect(s.bufferBytes).toBeLessThan(32 * (d * 4 + 4) + 1);
    const seen: string[] = [];
    const batches: Float32Array[] = [];
    let position;
    for (let b = 0; b < 30; b++) {
      if (b === 11) position = s.getPosition();
      const t = await s.next();
      batches.push(t.data);
      for (let r = 0; r < 7 && seen.length < rows; r++) seen.push(Array.from(t.data.subarray(r * d, (r + 1) * d)).join(','));
    }
    const all = Array.from({ length: rows }, (_, r) => Array.from(data.subarray(r * d, (r + 1) * d)).join(','));
    expect([...seen].sort()).toEqual([...all].sort());
    expect(seen).not.toEqual(all); // shuffled
    const store2 = openActivationStore(dir);
    const resumed = storeBatchStream(store2, { ...opts, resumeFrom: position });
    for (let b = 11; b < 30; b++) expect(Array.from((await resumed.next()).data)).toEqual(Array.from(batches[b]!));
    await Promise.all([store.close(), store2.close()]);
  });

  it('imports .npy and safetensors activations, rejecting NaN rows with the file named', async () => {
    const dir = tmp();
    const a = { data: data.slice(0, 60 * d), shape: [60, d] };
    const b = { data: data.slice(60 * d), shape: [rows - 60, d] };
    writeFileSync(join(dir, 'a.npy'), encodeNpy(a));
    writeFileSync(join(dir, 'b.safetensors'), encodeSafetensors({ acts: b, other: { data: new Float32Array(3), shape: [3] } }));
    const out = join(dir, 'store');
    const m = await importActivations({ inputs: [join(dir, 'a.npy'), `${join(dir, 'b.safetensors')}#acts`], out, shardRows: 25, site: 'x' });
    expect(m.rows).toBe(rows);
    expect(m.shards.length).toBe(5);
    expect(Array.from(await readFrom(out, 0, rows))).toEqual(Array.from(data));
    const bad = data.slice(0, 10 * d);
    bad[17] = Number.NaN;
    writeFileSync(join(dir, 'bad.npy'), encodeNpy({ data: bad, shape: [10, d] }));
    await expect(importActivations({ inputs: [join(dir, 'bad.npy')], out: join(dir, 's2') })).rejects.toThrow(/bad\.npy.*row 3/);
    writeFileSync(join(dir, 'c.npy'), encodeNpy({ data: new Float32Array(12), shape: [3, 4] }));
    await expect(importActivations({ inputs: [join(dir, 'a.npy'), join(dir, 'c.npy')], out: join(dir, 's3') })).rejects.toThrow(/c\.npy: has d=4/);
  });
});
