/** `saelab probe` / `saelab dashboard`: bad input gives one clear line (exit code 1). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir, writeSynthetic } from './util.js';

const STORIES = join(__dirname, '../../../../shared/models/stories260K/stories260K.bin');
let tmp: Awaited<ReturnType<typeof tempDir>>;
let sae16: string;

beforeAll(async () => {
  tmp = await tempDir('interp-cli');
  const x = join(tmp.dir, 'x.npy');
  await writeSynthetic(x, { rows: 300, dIn: 16 });
  sae16 = join(tmp.dir, 'sae16');
  expect((await cli('train', '--arch', 'relu', '--activations', x, '--out', sae16, '--d-sae', '8', '--steps', '2', '--batch', '32', '--quiet')).code).toBe(0);
});
afterAll(() => tmp.cleanup());

describe('saelab probe / dashboard: errors', () => {
  it('unknown task and bad --k', async () => {
    const r = await cli('probe', '--sae', sae16, '--lm', 'llama2c:x.bin', '--task', 'sentiment');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--task <task>' argument 'sentiment' is invalid\. Allowed choices are all, pos, brown-genre, sotu-era, sotu-party/);
    const k = await cli('probe', '--sae', sae16, '--lm', 'llama2c:x.bin', '--k', '1,0');
    expect(k.stderr).toMatch(/--k must be positive integers joined by commas, got '1,0'/);
  });
  it('--latents must be all or a count', async () => {
    const r = await cli('dashboard', '--sae', sae16, '--lm', 'llama2c:x.bin', '--out', join(tmp.dir, 'd'), '--latents', 'some');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--latents must be 'all' or a non-negative integer, got 'some'/);
  });
  it.skipIf(!existsSync(STORIES))('an SAE without hook_name needs --site; a d_in that does not match the site is named', async () => {
    const r = await cli('probe', '--sae', sae16, '--lm', `llama2c:${STORIES}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/probe needs --site: the SAE folder names no hook_name/);
    const d = await cli('probe', '--sae', sae16, '--lm', `llama2c:${STORIES}`, '--site', 'blocks.2.hook_resid_post');
    expect(d.stderr).toMatch(/the LM's blocks.2.hook_resid_post has d = 64 but the SAE's d_in is 16/);
    const dash = await cli('dashboard', '--sae', sae16, '--lm', `llama2c:${STORIES}`, '--out', join(tmp.dir, 'd'), '--site', 'blocks.9.hook_resid_post');
    expect(dash.stderr).toMatch(/the LM has no site 'blocks.9.hook_resid_post'/);
    expect(existsSync(join(tmp.dir, 'd'))).toBe(false);
  });
});
