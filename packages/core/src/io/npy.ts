/**
 * NumPy `.npy` files (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 *   "\x93NUMPY" major minor, header length (u16 LE in v1, u32 LE in v2/v3), then a Python dict literal
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (N, d), } padded with spaces and ending in '\n' so the data
 *   starts at a multiple of 64; then the raw row-major data. We read little-endian float32/float16/float64
 *   (widened or narrowed to float32) in C order, and write float32.
 */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { numel, type Tensor } from '../tensor.js';
import { tempSibling, writeFileAtomic } from './atomic.js';
import { DTYPE_BYTES, bytesToFloat32, float32Bytes, type FloatDtype } from './dtype.js';
import { readExactly } from './read.js';
import { checkRowRange } from './safetensors.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const DESCRS: Record<string, FloatDtype> = { '<f4': 'float32', '<f2': 'float16', '<f8': 'float64' };

export interface NpyHeader {
  readonly version: readonly [number, number];
  /** The NumPy dtype string, e.g. '<f4'. */
  readonly descr: string;
  readonly dtype: FloatDtype;
  readonly shape: readonly number[];
  /** Byte offset of the data in the file. */
  readonly dataOffset: number;
}

/** Bytes needed to know the header length: magic (6) + version (2) + length (2 or 4). */
function prefixLength(bytes: Uint8Array, source: string): { lenBytes: number; headerLen: number; version: [number, number] } {
  if (bytes.byteLength < 10 || !MAGIC.every((b, i) => bytes[i] === b)) {
    throw new Error(`${source}: not a .npy file (missing the \\x93NUMPY magic${bytes.byteLength < 10 ? ', file too short' : ''})`);
  }
  const version: [number, number] = [bytes[6]!, bytes[7]!];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (version[0] === 1) return { lenBytes: 2, headerLen: view.getUint16(8, true), version };
  if (version[0] === 2 || version[0] === 3) {
    if (bytes.byteLength < 12) throw new Error(`${source}: file is truncated inside the .npy header`);
    return { lenBytes: 4, headerLen: view.getUint32(8, true), version };
  }
  throw new Error(`${source}: unsupported .npy format version ${version[0]}.${version[1]} (known: 1, 2, 3)`);
}

/** Parses the header; `bytes` must hold at least the whole header (the data may follow). */
export function parseNpyHeader(bytes: Uint8Array, source = 'npy'): NpyHeader {
  const { lenBytes, headerLen, version } = prefixLength(bytes, source);
  const start = 8 + lenBytes;
  if (bytes.byteLength < start + headerLen) throw new Error(`${source}: file is truncated inside the .npy header`);
  // v1/v2 headers are latin-1, v3 UTF-8; the keys and values we need are ASCII either way.
  const text = Buffer.from(bytes.buffer, bytes.byteOffset + start, headerLen).toString(version[0] === 3 ? 'utf8' : 'latin1');

  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new Error(`${source}: malformed .npy header (need descr, fortran_order and shape): ${text.trim()}`);
  }
  if (fortran === 'True') {
    throw new Error(`${source}: fortran_order=True (column-major) is not supported; save with np.ascontiguousarray(x)`);
  }
  const dtype = DESCRS[descr];
  if (dtype === undefined) {
    const hint = descr.startsWith('>') ? ' (big-endian; convert with x.astype("<f4"))' : '';
    throw new Error(`${source}: unsupported dtype '${descr}'${hint}; supported: ${Object.keys(DESCRS).join(', ')}`);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim().replace(/L$/, ''))
    .filter((s) => s.length > 0)
    .map((s) => {
      const v = Number(s);
      if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${source}: bad dimension '${s}' in shape (${shapeText})`);
      return v;
    });
  return { version, descr, dtype, shape, dataOffset: start + headerLen };
}

/** Throws unless the data section has exactly the bytes the header promises. */
function checkDataSize(h: NpyHeader, fileBytes: number, source: string): void {
  const need = h.dataOffset + numel(h.shape) * DTYPE_BYTES[h.dtype];
  if (fileBytes < need) throw new Error(`${source}: file is truncated (shape [${h.shape.join(', ')}] ${h.descr} needs ${need} bytes, file has ${fileBytes})`);
  if (fileBytes > need) throw new Error(`${source}: size mismatch (shape [${h.shape.join(', ')}] ${h.descr} needs ${need} bytes, file has ${fileBytes}: ${fileBytes - need} extra)`);
}

/** Decodes a whole .npy held in memory to a float32 tensor. */
export function decodeNpy(bytes: Uint8Array, source = 'npy'): Tensor {
  const h = parseNpyHeader(bytes, source);
  checkDataSize(h, bytes.byteLength, source);
  return { data: bytesToFloat32(bytes.subarray(h.dataOffset), h.dtype), shape: [...h.shape] };
}

/** The header bytes of a C-order little-endian float32 array of `shape` (v1, or v2 if the header is huge). */
export function npyHeaderBytes(shape: readonly number[]): Uint8Array {
  numel(shape); // validates the dimensions
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${tuple}, }`;
  // Pad with spaces + '\n' so magic + version + length + header is a multiple of 64 (NumPy's alignment).
  const build = (lenBytes: number) => {
    const total = Math.ceil((8 + lenBytes + dict.length + 1) / 64) * 64;
    return { total, headerLen: total - 8 - lenBytes };
  };
  let lenBytes = 2;
  let { total, headerLen } = build(2);
  if (headerLen > 0xffff) ({ total, headerLen } = build((lenBytes = 4)));
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = lenBytes === 2 ? 1 : 2;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (lenBytes === 2) view.setUint16(8, headerLen, true);
  else view.setUint32(8, headerLen, true);
  const text = dict.padEnd(headerLen - 1, ' ') + '\n';
  out.set(Buffer.from(text, 'latin1'), 8 + lenBytes);
  return out;
}

/** Encodes a float32 tensor as a .npy file ('<f4', C order). */
export function encodeNpy(t: Tensor): Uint8Array {
  const n = numel(t.shape);
  if (t.data.length !== n) throw new Error(`encodeNpy: ${t.data.length} elements but shape [${t.shape.join(', ')}] needs ${n}`);
  const header = npyHeaderBytes(t.shape);
  const out = new Uint8Array(header.byteLength + 4 * n);
  out.set(header, 0);
  out.set(float32Bytes(t.data), header.byteLength);
  return out;
}

export async function writeNpyFile(path: string, t: Tensor): Promise<void> {
  await writeFileAtomic(path, encodeNpy(t));
}

export async function readNpyFile(path: string): Promise<Tensor> {
  return decodeNpy(await readFile(path), path);
}

/** Reads and validates the header through an open handle (and checks the file size against it). */
export async function readNpyHeaderFrom(fh: FileHandle, source: string): Promise<NpyHeader> {
  const { size } = await fh.stat();
  const prefix = await readExactly(fh, 0, Math.min(size, 12), source);
  const { lenBytes, headerLen } = prefixLength(prefix, source);
  const h = parseNpyHeader(await readExactly(fh, 0, Math.min(size, 8 + lenBytes + headerLen), source), source);
  checkDataSize(h, size, source);
  return h;
}

/** The header of a .npy file, reading only the header. */
export async function readNpyHeader(path: string): Promise<NpyHeader> {
  const fh = await open(path, 'r');
  try {
    return await readNpyHeaderFrom(fh, path);
  } finally {
    await fh.close();
  }
}

/** Rows [start, start+count) of a 2-D .npy, through an open handle, as float32. */
export async function readNpyRowsFrom(fh: FileHandle, h: NpyHeader, start: number, count: number, source: string): Promise<Float32Array> {
  if (h.shape.length !== 2) throw new Error(`${source}: expected a 2-D array to read rows, got shape [${h.shape.join(', ')}]`);
  const [rows, d] = h.shape as [number, number];
  checkRowRange(start, count, rows, source);
  const rowBytes = d * DTYPE_BYTES[h.dtype];
  return bytesToFloat32(await readExactly(fh, h.dataOffset + start * rowBytes, count * rowBytes, source), h.dtype);
}

/** Random access: rows [startRow, startRow+count) of a 2-D .npy file without reading the rest. */
export async function readNpyRows(path: string, startRow: number, count: number): Promise<Float32Array> {
  const fh = await open(path, 'r');
  try {
    return await readNpyRowsFrom(fh, await readNpyHeaderFrom(fh, path), startRow, count, path);
  } finally {
    await fh.close();
  }
}

/**
 * Writes a [rows, d] float32 .npy incrementally (outputs bigger than memory, e.g. latents of a large file):
 * rows go to a temp sibling; `close()` checks the row count, fsyncs and renames into place; `abort()` discards.
 */
export class NpyRowWriter {
  private written = 0;
  private constructor(
    readonly path: string,
    readonly rows: number,
    readonly d: number,
    private readonly tmp: string,
    private readonly fh: FileHandle,
    private offset: number,
  ) {}

  static async create(path: string, rows: number, d: number): Promise<NpyRowWriter> {
    const header = npyHeaderBytes([rows, d]);
    const tmp = tempSibling(path);
    const fh = await open(tmp, 'w');
    await fh.write(header, 0, header.byteLength, 0);
    return new NpyRowWriter(path, rows, d, tmp, fh, header.byteLength);
  }

  /** Appends whole rows (length a multiple of d). */
  async append(data: Float32Array): Promise<void> {
    if (data.length % this.d !== 0) throw new Error(`${this.path}: append got ${data.length} values, not a multiple of d=${this.d}`);
    const n = data.length / this.d;
    if (this.written + n > this.rows) throw new Error(`${this.path}: appending ${n} rows would exceed the declared ${this.rows}`);
    const bytes = float32Bytes(data);
    let off = 0;
    while (off < bytes.byteLength) {
      const { bytesWritten } = await this.fh.write(bytes, off, bytes.byteLength - off, this.offset + off);
      off += bytesWritten;
    }
    this.offset += bytes.byteLength;
    this.written += n;
  }

  async close(): Promise<void> {
    if (this.written !== this.rows) {
      await this.abort();
      throw new Error(`${this.path}: wrote ${this.written} rows but declared ${this.rows}; nothing was written`);
    }
    await this.fh.sync();
    await this.fh.close();
    await rename(this.tmp, this.path);
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await unlink(this.tmp).catch(() => undefined);
  }
}
