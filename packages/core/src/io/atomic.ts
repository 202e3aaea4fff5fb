/**
 * Atomic file and folder replacement. A reader (or a crash) sees either the old content or the new, never a
 * half-written file: we write a temporary sibling in the same directory (same filesystem, so rename is atomic),
 * fsync it, then rename it over the target.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { mkdir, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/** A unique sibling name: `${path}.${tag}-<pid>-<random>`. */
export function tempSibling(path: string, tag = 'tmp'): string {
  return `${path}.${tag}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/** fsync a directory so a rename inside it is durable; not supported everywhere (e.g. Windows), hence best effort. */
async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* best effort */
  }
}

/** Writes `data` to `path` atomically: temp file in the same directory, fsync, rename. Creates parent folders. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempSibling(path);
  try {
    const fh = await open(tmp, 'w');
    try {
      const bytes = toBytes(data);
      let off = 0;
      while (off < bytes.byteLength) {
        const { bytesWritten } = await fh.write(bytes, off, bytes.byteLength - off);
        off += bytesWritten;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dirname(path));
}

/** Synchronous twin of {@link writeFileAtomic} (for exit handlers, where no more ticks run). */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempSibling(path);
  try {
    const fd = openSync(tmp, 'w');
    try {
      const bytes = toBytes(data);
      let off = 0;
      while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Replaces the folder `dir` with one built by `fill(tmpDir)`. The new folder is built completely in a temp sibling;
 * then the old folder (if any) is renamed aside, the new one renamed into place, and the old one removed. If `fill`
 * throws, the temp folder is removed and `dir` is untouched. POSIX has no atomic swap of two non-empty folders, so a
 * crash in the instant between the two renames leaves `dir` absent and the complete old folder at `${dir}.old-*`
 * — never a half-written `dir`.
 */
export async function replaceDirAtomic(dir: string, fill: (tmpDir: string) => Promise<void>): Promise<void> {
  const parent = dirname(dir);
  await mkdir(parent, { recursive: true });
  const tmpDir = tempSibling(dir);
  await mkdir(tmpDir);
  try {
    await fill(tmpDir);
  } catch (err) {
    await rm(tmpDir, { recursive: true, force: true });
    throw err;
  }
  const old = (await exists(dir)) ? tempSibling(dir, 'old') : null;
  if (old !== null) await rename(dir, old);
  try {
    await rename(tmpDir, dir);
  } catch (err) {
    if (old !== null) await rename(old, dir).catch(() => undefined); // put the old folder back
    await rm(tmpDir, { recursive: true, force: true });
    throw err;
  }
  await syncDir(parent);
  if (old !== null) await rm(old, { recursive: true, force: true });
}
