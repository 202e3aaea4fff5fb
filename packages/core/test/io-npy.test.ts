import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import { decodeNpy, encodeNpy, NpyRowWriter, parseNpyHeader, readNpyFile, readNpyHeader, readNpyRows, writeNpyFile } from '../src/io/npy.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'saelab-npy-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A .npy exactly as numpy.save writes it (v1.0, header padded to 128 bytes with spaces and '\n'). */
function numpyStyle(descr: string, shapeText: string, data: Uint8Array, fortran = 'False', major = 1): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shapeText}, }`;
  const lenBytes = major === 1 ? 2 : 4;
  const total = Math.ceil((8 + lenBytes + dict.length + 1) / 64) * 64;
  const headerLen = total - 8 - lenBytes;
  const out = new Uint8Array(total + data.length);
  out.set([0x93, ...Buffer.from('NUMPY'), major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, headerLen, true);
  else view.setUint32(8, headerLen, true);
  out.set(Buffer.from(dict.padEnd(headerLen - 1, ' ') + '\n', 'latin1'), 8 + lenBytes);
  out.set(data, total);
  return out;
}

describe('npy', () => {
  it("writes numpy's exact header bytes", () => {
    // The 128 bytes numpy 1.x/2.x writes for np.save(f, np.zeros((2, 3), '<f4')).
    const expected = "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + ' '.repeat(58) + '\n';
    const bytes = encodeNpy({ data: new Float32Array(6), shape: [2, 3] });
    expect(Buffer.from(bytes.subarray(0, 128)).toString('latin1')).toBe(expected);
    expect(bytes.length).toBe(128 + 24);
    expect(Buffer.from(encodeNpy({ data: new Float32Array(5), shape: [5] }).subarray(10, 70)).toString('latin1')).toContain("'shape': (5,), }");
  });

  it('reads v1, v2 and v3 headers and f4/f2/f8 data', () => {
    const f4 = new Uint8Array(Float32Array.of(1, -2.5, 3, 4).buffer);
    const t = decodeNpy(numpyStyle('<f4', '(2, 2)', f4));
    expect(t).toEqual({ data: Float32Array.of(1, -2.5, 3, 4), shape: [2, 2] });
    expect(decodeNpy(numpyStyle('<f4', '(2, 2)', f4, 'False', 2)).data).toEqual(t.data);
    expect(parseNpyHeader(numpyStyle('<f4', '(4,)', f4, 'False', 3)).shape).toEqual([4]);
    const f2 = new Uint8Array(Uint16Array.of(0x3c00, 0xc000, 0x7bff, 0x0001).buffer);
    expect(decodeNpy(numpyStyle('<f2', '(1, 4)', f2)).data).toEqual(Float32Array.of(1, -2, 65504, 2 ** -24));
    const f8 = new Uint8Array(Float64Array.of(0.5, -0.25).buffer);
    expect(decodeNpy(numpyStyle('<f8', '(2,)', f8))).toEqual({ data: Float32Array.of(0.5, -0.25), shape: [2] });
    expect(decodeNpy(numpyStyle('<f4', '()', new Uint8Array(Float32Array.of(7).buffer)))).toEqual({ data: Float32Array.of(7), shape: [] });
  });

  it('rejects what it cannot read with clear errors', () => {
    const f4 = new Uint8Array(Float32Array.of(1, 2, 3, 4).buffer);
    expect(() => decodeNpy(numpyStyle('<f4', '(2, 2)', f4, 'True'))).toThrow(/fortran_order=True.*ascontiguousarray/);
    expect(() => decodeNpy(numpyStyle('>f4', '(2, 2)', f4))).toThrow(/unsupported dtype '>f4' \(big-endian/);
    expect(() => decodeNpy(numpyStyle('<i8', '(2,)', f4))).toThrow(/unsupported dtype '<i8'/);
    expect(() => decodeNpy(numpyStyle('<f4', '(2, 2)', f4.subarray(0, 12)))).toThrow(/truncated.*needs 144 bytes, file has 140/);
    expect(() => decodeNpy(numpyStyle('<f4', '(3,)', f4))).toThrow(/size mismatch.*4 extra/);
    expect(() => decodeNpy(f4)).toThrow(/not a \.npy file/);
    expect(() => decodeNpy(numpyStyle('<f4', '(2, 2)', f4).subarray(0, 60))).toThrow(/truncated inside the \.npy header/);
  });

  it('round-trips through files bit-exactly and reads row ranges', async () => {
    const rng = new Rng(3);
    const t = { data: rng.fillNormal(new Float32Array(40 * 9)), shape: [40, 9] };
    const path = join(dir, 'a.npy');
    await writeNpyFile(path, t);
    expect(await readNpyFile(path)).toEqual(t);
    expect((await readNpyHeader(path)).shape).toEqual([40, 9]);
    expect(await readNpyRows(path, 11, 4)).toEqual(t.data.slice(11 * 9, 15 * 9));
    await expect(readNpyRows(path, 39, 2)).rejects.toThrow(/outside the 40 rows/);
    // Only the target file is left behind (no temp files).
    expect(await readdir(dir)).toEqual(['a.npy']);
  });

  it('streams rows out with NpyRowWriter and refuses a short file', async () => {
    const rng = new Rng(4);
    const t = { data: rng.fillNormal(new Float32Array(10 * 3)), shape: [10, 3] };
    const path = join(dir, 'w.npy');
    const w = await NpyRowWriter.create(path, 10, 3);
    await w.append(t.data.subarray(0, 12));
    await w.append(t.data.subarray(12));
    await w.close();
    expect(await readFile(path)).toEqual(Buffer.from(encodeNpy(t)));
    const short = join(dir, 'short.npy');
    const w2 = await NpyRowWriter.create(short, 10, 3);
    await w2.append(t.data.subarray(0, 6));
    await expect(w2.close()).rejects.toThrow(/wrote 2 rows but declared 10/);
    await expect(readFile(short)).rejects.toThrow(/ENOENT/);
    await expect(w.append(new Float32Array(4))).rejects.toThrow(/not a multiple of d=3/);
  });
});
