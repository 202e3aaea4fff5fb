/**
 * Renders a real (tiny) sweep's report and checks that the frontier plot is present and not empty: in headless
 * Chromium when one is installed (a screenshot of report.html), and always the PNG the sweep wrote (resvg).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsEngine, syntheticSparseData, writeNpyFile } from '@saelab/core';
import { SERIES_COLOURS, parseSweepConfig, runSweep } from '../src/sweep/index.js';
import { findChromium } from './util.js';
import { countColour, countInk, decodePng } from './sweep-png.js';

const tmp = mkdtempSync(join(tmpdir(), 'sweep-render-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('sweep report rendering', () => {
  let runDir = '';
  beforeAll(async () => {
    const { x } = syntheticSparseData({ rows: 3000, dIn: 12, features: 40, meanActive: 3, seed: 5 });
    await writeNpyFile(join(tmp, 'acts.npy'), x);
    const config = parseSweepConfig({
      name: 'render',
      activations: join(tmp, 'acts.npy'),
      lm: { vocabSize: 64, dModel: 8, nLayers: 1, contextLength: 16, batch: 2, steps: 1, lr: 0.01 },
      data: { contextLength: 16, trainTokens: 1, evalTokens: 500 },
      grid: { architectures: ['topk', 'relu'], l0Targets: [2, 4, 8], seeds: [0, 1], expansions: [2] },
      training: { tokens: 2500, batch: 250, lr: 0.01 },
      calibration: { maxIters: 3, minSteps: 5, stepsFraction: 0.5, tolerance: 0.3, refineRuns: 0 },
    });
    const r = await runSweep({ config, cacheDir: join(tmp, 'cache'), out: join(tmp, 'run'), quiet: true, engine: jsEngine, log: () => undefined });
    runDir = r.runDir;
  });

  it('writes a PNG plot with ink and both series colours (resvg)', () => {
    const img = decodePng(readFileSync(join(runDir, 'frontier.png')));
    expect(img.width).toBeGreaterThan(400);
    expect(countInk(img) / (img.width * img.height)).toBeGreaterThan(0.01);
    expect(countColour(img, SERIES_COLOURS[0]!, 30)).toBeGreaterThan(50);
    expect(countColour(img, SERIES_COLOURS[1]!, 30)).toBeGreaterThan(50);
  });

  it('embeds the plot inline in a self-contained report.html', () => {
    const html = readFileSync(join(runDir, 'report.html'), 'utf8');
    expect(html).toMatch(/<figure id="frontier-plot"><svg/);
    expect(html).not.toMatch(/<script|src="http|href="http/);
    expect(html).toMatch(/No language model/);
  });

  const chromium = findChromium();
  it.skipIf(!chromium)('shows the plot when report.html is opened in headless Chromium', () => {
    const shot = join(tmp, 'shot.png');
    execFileSync(
      chromium!,
      ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--screenshot=${shot}`, '--window-size=1200,900', `file://${join(runDir, 'report.html')}`],
      { stdio: 'ignore', timeout: 60_000 },
    );
    expect(existsSync(shot)).toBe(true);
    const img = decodePng(readFileSync(shot));
    expect(countColour(img, SERIES_COLOURS[0]!, 30)).toBeGreaterThan(50);
    expect(countColour(img, SERIES_COLOURS[1]!, 30)).toBeGreaterThan(50);
  });
  if (!chromium) it('(headless Chromium is not installed: `apt-get install -y chromium` enables the browser rendering check)', () => undefined);
});
