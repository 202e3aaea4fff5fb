/**
 * The safetensors format (https://github.com/huggingface/safetensors#format):
 *   [8 bytes: N, u64 little-endian] [N bytes: UTF-8 JSON header, may be padded with spaces] [data buffer]
 * The header maps each tensor name to {dtype, shape, data_offsets: [begin, end)} with offsets relative to the start
 * of the data buffer, plus an optional "__metadata__" string→string map. Everything is little-endian, row-major.
 * We read F32, F16, BF16 and F64 (all widened/narrowed to float32) and write F32, padding the header with spaces
 * so the data buffer starts 8-byte aligned (as the reference implementation does).
 */
import { open, readFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { numel, type Tensor } from '../tensor.js';
import { writeFileAtomic } from './atomic.js';
import { DTYPE_BYTES, bytesToFloat32, float32Bytes, type FloatDtype } from './dtype.js';
import { readExactly } from './read.js';

/** Safetensors dtype codes we read. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64';

const DTYPES: Record<SafetensorsDtype, FloatDtype> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64' };

/** Codes defined by the format that we recognise but do not read (named in the error). */
const OTHER_KNOWN_DTYPES = ['BOOL', 'U8', 'I8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'F8_E4M3', 'F8_E5M2'];

/** The reference implementation refuses headers over 100 MB; a bigger length means a corrupt or foreign file. */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** [begin, end) in bytes, relative to the start of the data buffer (as in the header). */
  readonly dataOffsets: readonly [number, number];
}

export interface SafetensorsHeader {
  /** Absolute file offset of the data buffer (8 + header length). */
  readonly dataStart: number;
  /** Tensors in header order. */
  readonly tensors: readonly SafetensorsTensorInfo[];
  readonly metadata: Record<string, string>;
}

export interface DecodedSafetensors {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

/** Reads the 8-byte header length; `source` names the file in errors. */
function headerLength(first8: Uint8Array, totalBytes: number, source: string): number {
  if (totalBytes < 8) throw new Error(`${source}: file is truncated (${totalBytes} bytes; a safetensors file starts with an 8-byte header length)`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new Error(`${source}: header length ${n} is implausible (over 100 MB) — not a safetensors file, or corrupt`);
  const len = Number(n);
  if (8 + len > totalBytes) throw new Error(`${source}: file is truncated (header says ${len} header bytes, file has ${totalBytes - 8} after the length)`);
  return len;
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parses and validates the JSON header. `dataBytes` is the size of the data buffer (file size − dataStart);
 * every tensor must lie inside it, have the byte size its dtype and shape imply, and not overlap another.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, dataStart: number, dataBytes: number, source = 'safetensors'): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new Error(`${source}: header is not valid UTF-8 (corrupt file?)`);
  }
  if (!text.startsWith('{')) throw new Error(`${source}: header does not start with '{' (not a safetensors file, or corrupt)`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source}: header is not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${source}: header must be a JSON object`);

  let metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(entry, source);
      continue;
    }
    tensors.push(parseTensorEntry(name, entry, dataBytes, source));
  }
  // No two tensors may share bytes.
  const byStart = [...tensors].sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  for (let i = 1; i < byStart.length; i++) {
    const prev = byStart[i - 1]!;
    const cur = byStart[i]!;
    if (cur.dataOffsets[0] < prev.dataOffsets[1]) {
      throw new Error(
        `${source}: tensors '${prev.name}' [${prev.dataOffsets.join(', ')}) and '${cur.name}' [${cur.dataOffsets.join(', ')}) overlap`,
      );
    }
  }
  return { dataStart, tensors, metadata };
}

function parseMetadata(entry: unknown, source: string): Record<string, string> {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new Error(`${source}: __metadata__ must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new Error(`${source}: __metadata__.${k} must be a string, got ${typeof v}`);
    out[k] = v;
  }
  return out;
}

function parseTensorEntry(name: string, entry: unknown, dataBytes: number, source: string): SafetensorsTensorInfo {
  const where = `${source}: tensor '${name}'`;
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new Error(`${where}: entry must be an object`);
  const { dtype, shape, data_offsets: offsets } = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== 'string') throw new Error(`${where}: missing dtype`);
  if (!(dtype in DTYPES)) {
    const kind = OTHER_KNOWN_DTYPES.includes(dtype) ? 'unsupported' : 'unknown';
    throw new Error(`${where}: ${kind} dtype '${dtype}' (supported: ${Object.keys(DTYPES).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegInt)) throw new Error(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt)) {
    throw new Error(`${where}: data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw new Error(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataBytes) {
    throw new Error(`${where}: data_offsets [${begin}, ${end}] are out of range — the data buffer has ${dataBytes} bytes (file truncated or header corrupt)`);
  }
  const sd = dtype as SafetensorsDtype;
  const expected = numel(shape) * DTYPE_BYTES[DTYPES[sd]];
  if (end - begin !== expected) {
    throw new Error(`${where}: size mismatch — shape [${shape.join(', ')}] of ${sd} needs ${expected} bytes but data_offsets span ${end - begin}`);
  }
  return { name, dtype: sd, shape: [...shape], dataOffsets: [begin, end] };
}

/** Decodes a whole safetensors file held in memory. All tensors come back as float32. */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors'): DecodedSafetensors {
  const n = headerLength(bytes, bytes.byteLength, source);
  const dataStart = 8 + n;
  const header = parseSafetensorsHeader(bytes.subarray(8, dataStart), dataStart, bytes.byteLength - dataStart, source);
  const tensors: Record<string, Tensor> = {};
  for (const info of header.tensors) {
    const [b, e] = info.dataOffsets;
    tensors[info.name] = { data: bytesToFloat32(bytes.subarray(dataStart + b, dataStart + e), DTYPES[info.dtype]), shape: [...info.shape] };
  }
  return { tensors, metadata: header.metadata };
}

/**
 * Encodes float32 tensors (sorted by name, so the bytes do not depend on object key order) with optional
 * string metadata. The header is space-padded so the data buffer starts at a multiple of 8.
 */
export function encodeSafetensors(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`encodeSafetensors: metadata '${k}' must be a string, got ${typeof v}`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__' || name === '') throw new Error(`encodeSafetensors: invalid tensor name '${name}'`);
    const t = tensors[name]!;
    if (!(t.data instanceof Float32Array)) throw new Error(`encodeSafetensors: tensor '${name}' data must be a Float32Array`);
    const n = numel(t.shape);
    if (t.data.length !== n) throw new Error(`encodeSafetensors: tensor '${name}' has ${t.data.length} elements but shape [${t.shape.join(', ')}] needs ${n}`);
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + 4 * n] };
    offset += 4 * n;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + padded);
  let pos = 8 + padded;
  for (const name of names) {
    const bytes = float32Bytes(tensors[name]!.data);
    out.set(bytes, pos);
    pos += bytes.byteLength;
  }
  return out;
}

/** Reads and decodes a whole safetensors file (float32 tensors + metadata). */
export async function readSafetensorsFile(path: string): Promise<DecodedSafetensors> {
  return decodeSafetensors(await readFile(path), path);
}

/** Writes float32 tensors (+ metadata) atomically. */
export async function writeSafetensorsFile(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** Reads and validates the header through an open handle, without touching the data buffer. */
export async function readSafetensorsHeaderFrom(fh: FileHandle, source: string): Promise<SafetensorsHeader> {
  const { size } = await fh.stat();
  const first8 = size >= 8 ? await readExactly(fh, 0, 8, source) : new Uint8Array(8);
  const n = headerLength(first8, size, source);
  const headerBytes = await readExactly(fh, 8, n, source);
  return parseSafetensorsHeader(headerBytes, 8 + n, size - 8 - n, source);
}

/** The tensor infos and metadata of a safetensors file, reading only its header (for big activation files). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const fh = await open(path, 'r');
  try {
    return await readSafetensorsHeaderFrom(fh, path);
  } finally {
    await fh.close();
  }
}

/** Looks a tensor up by name, with an error listing what the file does hold. */
export function findTensor(header: SafetensorsHeader, name: string, source: string): SafetensorsTensorInfo {
  const info = header.tensors.find((t) => t.name === name);
  if (info === undefined) {
    throw new Error(`${source}: no tensor named '${name}' (it has: ${header.tensors.map((t) => t.name).join(', ') || 'none'})`);
  }
  return info;
}

/** Rows [start, start+count) of a 2-D tensor, read through an open handle and converted to float32. */
export async function readTensorRows(
  fh: FileHandle,
  header: SafetensorsHeader,
  info: SafetensorsTensorInfo,
  start: number,
  count: number,
  source: string,
): Promise<Float32Array> {
  if (info.shape.length !== 2) throw new Error(`${source}: tensor '${info.name}' must be 2-D to read rows, got shape [${info.shape.join(', ')}]`);
  const [rows, d] = info.shape as [number, number];
  checkRowRange(start, count, rows, `${source}#${info.name}`);
  const rowBytes = d * DTYPE_BYTES[DTYPES[info.dtype]];
  const at = header.dataStart + info.dataOffsets[0] + start * rowBytes;
  return bytesToFloat32(await readExactly(fh, at, count * rowBytes, source), DTYPES[info.dtype]);
}

/** Reads rows [startRow, startRow+count) of the 2-D tensor `name` without loading the rest of the file. */
export async function readSafetensorsRows(path: string, name: string, startRow: number, count: number): Promise<Float32Array> {
  const fh = await open(path, 'r');
  try {
    const header = await readSafetensorsHeaderFrom(fh, path);
    return await readTensorRows(fh, header, findTensor(header, name, path), startRow, count, path);
  } finally {
    await fh.close();
  }
}

/** The float32-conversion dtype name for a safetensors code. */
export function safetensorsFloatDtype(d: SafetensorsDtype): FloatDtype {
  return DTYPES[d];
}

/** Throws unless [start, start+count) is a valid row range of a tensor with `rows` rows. */
export function checkRowRange(start: number, count: number, rows: number, what: string): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > rows) {
    throw new Error(`${what}: row range [${start}, ${start}+${count}) is outside the ${rows} rows`);
  }
}
