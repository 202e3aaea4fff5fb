import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replaceDirAtomic, writeFileAtomic, writeFileAtomicSync } from '../src/io/atomic.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'saelab-atomic-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('atomic writes', () => {
  it('writeFileAtomic replaces content, creates parents and leaves no temp files', async () => {
    const p = join(dir, 'sub', 'f.txt');
    await writeFileAtomic(p, 'one');
    await writeFileAtomic(p, Uint8Array.of(116, 119, 111));
    expect(await readFile(p, 'utf8')).toBe('two');
    writeFileAtomicSync(p, 'three');
    expect(await readFile(p, 'utf8')).toBe('three');
    expect(await readdir(join(dir, 'sub'))).toEqual(['f.txt']);
  });

  it('writeFileAtomic leaves the old file when the write fails', async () => {
    const p = join(dir, 'keep.txt');
    await writeFile(p, 'old');
    // Renaming a file over a non-empty folder fails: the target must be untouched and the temp removed.
    const blocked = join(dir, 'blocked');
    await mkdir(join(blocked, 'x'), { recursive: true });
    await expect(writeFileAtomic(blocked, 'new')).rejects.toThrow();
    expect(await readdir(blocked)).toEqual(['x']);
    expect((await readdir(dir)).filter((n) => n.includes('.tmp-'))).toEqual([]);
    expect(await readFile(p, 'utf8')).toBe('old');
  });

  it('replaceDirAtomic swaps a whole folder in, and keeps the old one if filling fails', async () => {
    const target = join(dir, 'model');
    await replaceDirAtomic(target, async (tmp) => {
      await writeFile(join(tmp, 'a'), '1');
      await writeFile(join(tmp, 'b'), '1');
    });
    expect((await readdir(target)).sort()).toEqual(['a', 'b']);
    await replaceDirAtomic(target, async (tmp) => {
      await writeFile(join(tmp, 'a'), '2');
    });
    expect(await readdir(target)).toEqual(['a']); // b is gone: the folder was replaced, not merged
    expect(await readFile(join(target, 'a'), 'utf8')).toBe('2');
    await expect(
      replaceDirAtomic(target, async (tmp) => {
        await writeFile(join(tmp, 'a'), 'half');
        throw new Error('crash while filling');
      }),
    ).rejects.toThrow('crash while filling');
    expect(await readFile(join(target, 'a'), 'utf8')).toBe('2');
    expect((await readdir(dir)).filter((n) => n.startsWith('model.'))).toEqual([]);
  });
});
