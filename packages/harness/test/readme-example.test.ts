/** The README's quick start must run as written: extract its first ```ts block and execute it with tsx. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

const root = resolve(__dirname, '../../..');

it('the README quick start runs and produces sparse latents', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(code, 'README has a ```ts block').toBeTruthy();
  // Run it inside the repo so '@saelab/*' resolve, and print what it computed.
  const dir = mkdtempSync(join(root, 'packages/harness/.readme-'));
  try {
    const file = join(dir, 'quickstart.ts');
    writeFileSync(file, `${code}\nconst nz = latents.data.filter((v) => v !== 0).length / latents.shape[0]!;\nconsole.log(JSON.stringify({ shape: latents.shape, l0: nz }));\n`);
    const out = execFileSync(join(root, 'node_modules/.bin/tsx'), [file], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    const { shape, l0 } = JSON.parse(out.trim().split('\n').pop()!);
    expect(shape).toEqual([2048, 256]);
    expect(l0).toBeGreaterThan(0);
    expect(l0).toBeLessThan(32); // trained: far sparser than the ~129 active at init
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
