/**
 * Every README's runnable example (a ```ts example block) must run as written: extract it, execute it with tsx
 * inside the repo (so '@saelab/*' resolve), and check what it computed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(__dirname, '../../..');

function runExample(readmePath: string, epilogue: string): string {
  const readme = readFileSync(join(root, readmePath), 'utf8');
  const code = /```ts example\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(code, `${readmePath} has a \`\`\`ts example block`).toBeTruthy();
  const dir = mkdtempSync(join(root, 'packages/harness/.readme-'));
  try {
    const file = join(dir, 'example.ts');
    writeFileSync(file, `${code}\n${epilogue}\n`);
    return execFileSync(join(root, 'node_modules/.bin/tsx'), [file], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

it('the README quick start runs and produces sparse latents', () => {
  const out = runExample('README.md', 'console.log(JSON.stringify({ shape: latents.shape, l0: latents.data.filter((v) => v !== 0).length / latents.shape[0]! }));');
  const { shape, l0 } = JSON.parse(out.trim().split('\n').pop()!);
  expect(shape).toEqual([2048, 256]);
  expect(l0).toBeGreaterThan(0);
  expect(l0).toBeLessThan(32); // trained: far sparser than the ~129 active at init
});

describe('each architecture package README example runs', () => {
  // Every architecture package (sae-*), so a new one's README is checked without listing it here.
  for (const pkg of readdirSync(join(root, 'packages')).filter((d) => d.startsWith('sae-')).sort()) {
    it(pkg, () => {
      const out = runExample(`packages/${pkg}/README.md`, 'console.log(JSON.stringify({ RESULT: { loss, l0: latents.data.filter((v) => v !== 0).length / 1024 } }));');
      const { RESULT } = JSON.parse(out.trim().split('\n').pop()!);
      expect(Number.isFinite(RESULT.loss)).toBe(true);
      expect(RESULT.l0).toBeGreaterThan(0);
      expect(RESULT.l0).toBeLessThan(64); // sparse: under half of the 128 latents
    });
  }
});
