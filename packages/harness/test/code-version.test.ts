/** Cache keys follow the code: a source hash changes with any .ts file's name or contents, and only with those. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { codeVersion, lmCodeVersion, sourceHash } from '../src/sweep/index.js';

const root = mkdtempSync(join(tmpdir(), 'code-version-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it('sourceHash tracks .ts contents and names, ignores other files', () => {
  mkdirSync(join(root, 'pkg/src/sub'), { recursive: true });
  writeFileSync(join(root, 'pkg/src/a.ts'), 'export const a = 1;\n');
  writeFileSync(join(root, 'pkg/src/sub/b.ts'), 'export const b = 2;\n');
  const h0 = sourceHash(['pkg/src'], root);
  expect(sourceHash(['pkg/src'], root)).toBe(h0);
  writeFileSync(join(root, 'pkg/src/notes.md'), 'not code');
  expect(sourceHash(['pkg/src'], root)).toBe(h0);
  writeFileSync(join(root, 'pkg/src/sub/b.ts'), 'export const b = 3;\n');
  const h1 = sourceHash(['pkg/src'], root);
  expect(h1).not.toBe(h0);
  rmSync(join(root, 'pkg/src/sub/b.ts'));
  writeFileSync(join(root, 'pkg/src/sub/c.ts'), 'export const b = 3;\n');
  expect(sourceHash(['pkg/src'], root)).not.toBe(h1);
});

it('each architecture and each LM kind has its own code version', () => {
  const archs = ['relu', 'gated', 'topk', 'jumprelu'] as const;
  expect(new Set(archs.map((a) => codeVersion(a))).size).toBe(4);
  expect(lmCodeVersion('llama2c')).toMatch(/^[0-9a-f]{12}$/);
  expect(lmCodeVersion('longhorn')).not.toBe(lmCodeVersion('llama2c'));
});
