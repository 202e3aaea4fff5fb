/** Positional reads through a file handle that either return exactly what was asked for or say why not. */
import type { FileHandle } from 'node:fs/promises';

/**
 * Reads `length` bytes at `position` into a new buffer. A short read (file shorter than its header promised)
 * throws `${what}: file is truncated ...` rather than returning zeros.
 */
export async function readExactly(fh: FileHandle, position: number, length: number, what: string): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let off = 0;
  while (off < length) {
    // Node caps a single read at 2 GiB; ask in ≤ 1 GiB pieces.
    const { bytesRead } = await fh.read(buf, off, Math.min(length - off, 1 << 30), position + off);
    if (bytesRead === 0) {
      throw new Error(`${what}: file is truncated (wanted bytes ${position}..${position + length}, file ends at ${position + off})`);
    }
    off += bytesRead;
  }
  return buf;
}
