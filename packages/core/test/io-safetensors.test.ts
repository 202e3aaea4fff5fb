import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensorsFile,
  readSafetensorsHeader,
  readSafetensorsRows,
  writeSafetensorsFile,
} from '../src/io/safetensors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'saelab-st-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function randomTensor(rng: Rng, shape: number[]) {
  const n = shape.reduce((a, b) => a * b, 1);
  return { data: rng.fillNormal(new Float32Array(n)), shape };
}

/** Builds a safetensors file by hand: u64 LE header length, the JSON text, then the given data bytes. */
function craft(headerJson: string, data: number[]): Uint8Array {
  const h = Buffer.from(headerJson, 'utf8');
  const out = new Uint8Array(8 + h.length + data.length);
  const len = h.length;
  for (let i = 0; i < 8; i++) out[i] = Math.floor(len / 2 ** (8 * i)) & 0xff;
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const EXAMPLE_HEADER =
  '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
  '"b":{"dtype":"F16","shape":[1,2],"data_offsets":[8,12]},' +
  '"c":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]},' +
  '"d":{"dtype":"F64","shape":[],"data_offsets":[16,24]},' +
  '"__metadata__":{"format":"pt","note":"hand-made"}}';
// prettier-ignore
const EXAMPLE_DATA = [
  0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0, // F32 1.0, -2.5
  0x00, 0x3c, 0x00, 0xc0,                         // F16 0x3C00 = 1, 0xC000 = -2
  0x80, 0x3f, 0x40, 0xc0,                         // BF16 0x3F80 = 1, 0xC040 = -3
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3f, // F64 0.5
];

describe('safetensors', () => {
  it('decodes a file crafted byte by byte from the format description', () => {
    const { tensors, metadata } = decodeSafetensors(craft(EXAMPLE_HEADER, EXAMPLE_DATA));
    expect(metadata).toEqual({ format: 'pt', note: 'hand-made' });
    expect(tensors.a).toEqual({ data: Float32Array.of(1, -2.5), shape: [2] });
    expect(tensors.b).toEqual({ data: Float32Array.of(1, -2), shape: [1, 2] });
    expect(tensors.c).toEqual({ data: Float32Array.of(1, -3), shape: [2] });
    expect(tensors.d).toEqual({ data: Float32Array.of(0.5), shape: [] });
    // Header padded with trailing spaces is also valid.
    expect(decodeSafetensors(craft(EXAMPLE_HEADER + '     ', EXAMPLE_DATA)).tensors.b!.data).toEqual(Float32Array.of(1, -2));
  });

  it('encodes to the layout of the format: length, space-padded JSON, aligned little-endian data', () => {
    const bytes = encodeSafetensors({ x: { data: Float32Array.of(1, -2.5, 3), shape: [3] } }, { k: 'v' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8'));
    expect(header).toEqual({ __metadata__: { k: 'v' }, x: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } });
    expect(Array.from(bytes.subarray(8 + n))).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0, 0, 0, 0x40, 0x40]);
    expect(bytes.length).toBe(8 + n + 12);
  });

  it('round-trips bit-exactly through a file, including NaN payloads and -0', async () => {
    const rng = new Rng(1);
    const tensors = { W_enc: randomTensor(rng, [5, 7]), b_dec: randomTensor(rng, [5]), s: { data: Float32Array.of(3), shape: [] as number[] } };
    const special = new Uint32Array([0x7fc00001, 0x80000000, 0x7f800000, 0x00000001]);
    const odd = { data: new Float32Array(special.buffer), shape: [4] };
    const path = join(dir, 'rt.safetensors');
    await writeSafetensorsFile(path, { ...tensors, odd }, { a: '1' });
    const back = await readSafetensorsFile(path);
    expect(back.metadata).toEqual({ a: '1' });
    for (const [k, t] of Object.entries({ ...tensors, odd })) {
      expect(back.tensors[k]!.shape).toEqual(t.shape);
      expect(new Uint32Array(back.tensors[k]!.data.buffer)).toEqual(new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length));
    }
    // Same tensors in a different key order give the same bytes.
    const path2 = join(dir, 'rt2.safetensors');
    await writeSafetensorsFile(path2, { odd, s: tensors.s, b_dec: tensors.b_dec, W_enc: tensors.W_enc }, { a: '1' });
    expect(await readFile(path2)).toEqual(await readFile(path));
  });

  it('reads the header alone and row ranges of a 2-D tensor', async () => {
    const rng = new Rng(2);
    const big = randomTensor(rng, [50, 6]);
    const path = join(dir, 'rows.safetensors');
    await writeSafetensorsFile(path, { acts: big, other: randomTensor(rng, [3]) });
    const h = await readSafetensorsHeader(path);
    expect(h.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([
      ['acts', 'F32', [50, 6]],
      ['other', 'F32', [3]],
    ]);
    expect(await readSafetensorsRows(path, 'acts', 17, 5)).toEqual(big.data.slice(17 * 6, 22 * 6));
    expect(await readSafetensorsRows(path, 'acts', 49, 1)).toEqual(big.data.slice(49 * 6));
    await expect(readSafetensorsRows(path, 'acts', 48, 3)).rejects.toThrow(/outside the 50 rows/);
    await expect(readSafetensorsRows(path, 'other', 0, 1)).rejects.toThrow(/must be 2-D/);
    await expect(readSafetensorsRows(path, 'nope', 0, 1)).rejects.toThrow(/no tensor named 'nope' \(it has: acts, other\)/);
  });

  it('rejects corrupt and truncated files with specific errors', async () => {
    const good = craft(EXAMPLE_HEADER, EXAMPLE_DATA);
    expect(() => decodeSafetensors(good.subarray(0, 5))).toThrow(/truncated/);
    expect(() => decodeSafetensors(good.subarray(0, 40))).toThrow(/truncated/);
    expect(() => decodeSafetensors(good.subarray(0, good.length - 3))).toThrow(/tensor 'd'.*out of range/);
    const h = (s: string) => craft(s, EXAMPLE_DATA);
    expect(() => decodeSafetensors(h('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}'))).toThrow(
      /'a' \[0, 8\) and 'b' \[4, 12\) overlap/,
    );
    expect(() => decodeSafetensors(h('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}'))).toThrow(/size mismatch.*needs 12 bytes.*span 8/);
    expect(() => decodeSafetensors(h('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}'))).toThrow(/out of range/);
    expect(() => decodeSafetensors(h('{"a":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}}'))).toThrow(/unknown dtype 'Q9'/);
    expect(() => decodeSafetensors(h('{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}'))).toThrow(/unsupported dtype 'I64'/);
    expect(() => decodeSafetensors(h('{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}'))).toThrow(/shape must be/);
    expect(() => decodeSafetensors(h('{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}'))).toThrow(/end before/);
    expect(() => decodeSafetensors(h('{"__metadata__":{"k":1}}'))).toThrow(/__metadata__.k must be a string/);
    expect(() => decodeSafetensors(h('{"a":'))).toThrow(/not valid JSON/);
    expect(() => decodeSafetensors(h('[1,2]'))).toThrow(/does not start with '\{'/);
    const huge = new Uint8Array(16);
    huge.fill(0xff, 0, 8);
    expect(() => decodeSafetensors(huge)).toThrow(/implausible/);
    const path = join(dir, 'trunc.safetensors');
    await writeFile(path, good.subarray(0, good.length - 8));
    await expect(readSafetensorsFile(path)).rejects.toThrow(new RegExp(`${path.replace(/[/\\.]/g, '\\$&')}: tensor 'd'`));
    await expect(readSafetensorsHeader(path)).rejects.toThrow(/out of range/);
  });
});
