/**
 * Latent dashboards on a real (tiny, random) Longhorn LM over Brown text: the streaming harvest against a brute-force
 * float64 reference, bounded state, clean restart after an interruption, and the folder in headless Chromium
 * (renders, search filters, sort, highlighted tokens follow the activations, no request leaves the file).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TextTokenizer, documentWindows, gpt2Tokenizer, loadCorpora, tagBrownDocument } from '@saelab/activations';
import { type Params, Rng, jsEngine, saveSae } from '@saelab/core';
import { relu } from '@saelab/sae-relu';
import { LonghornLM, buildVocab, initParams, parseConfig, restrictTokenizer } from '@saelab/ssm-longhorn';
import { findChromium } from './util.js';
import { LatentStats, harvestLatents, runDashboard } from '../src/interp/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'interp-dash-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const T = 16;
const D = 8;
const M = 24;
const TOKENS = 700;
const SITE = 'blocks.0.hook_resid_post';

function tinyLm(): { lm: LonghornLM; tokenizer: TextTokenizer } {
  const gpt2 = gpt2Tokenizer();
  const sample = loadCorpora('brown', 'train').slice(0, 3).flatMap((d) => gpt2.encode(d.text));
  const tokenizer = restrictTokenizer(gpt2, buildVocab('gpt2', sample, 96)) as TextTokenizer;
  const cfg = parseConfig({ vocabSize: 96, dModel: D, nLayers: 1, bos: 1 });
  return { lm: new LonghornLM(cfg, initParams(cfg, 3), jsEngine), tokenizer };
}

function tinySae(): { cfg: { dIn: number; dSae: number; applyBDecToInput: boolean }; params: Params } {
  const cfg = relu.configSchema.parse({ dIn: D, dSae: M });
  const params = relu.init(cfg, new Rng(9));
  return { cfg, params };
}

/** Every valid token's latents in float64, straight from the ReLU SAE's equation f = relu((x − b_dec) W_enc + b_enc). */
async function bruteForce(lm: LonghornLM, tokenizer: TextTokenizer, params: Params) {
  const rows: { window: number; position: number; token: number; f: Float64Array; windowTokens: number[] }[] = [];
  let window = 0;
  for (const doc of loadCorpora('brown', 'validation')) {
    const tokens = tagBrownDocument(doc.id, tokenizer).tokens;
    for (const w of documentWindows(tokens, T, tokenizer.bos)) {
      const ids = new Int32Array(T).fill(tokenizer.bos!);
      ids.set(w);
      const { acts } = await lm.run(ids, 1, T, { read: [SITE], skipLogits: true });
      for (let t = 1; t < w.length && rows.length < TOKENS; t++) {
        const f = new Float64Array(M);
        for (let j = 0; j < M; j++) {
          let s = params.b_enc!.data[j]!;
          for (let i = 0; i < D; i++) s += (acts[SITE]!.data[t * D + i]! - params.b_dec!.data[i]!) * params.W_enc!.data[i * M + j]!;
          f[j] = Math.max(0, s);
        }
        rows.push({ window, position: t, token: w[t]!, f, windowTokens: w });
      }
      window++;
      if (rows.length >= TOKENS) return rows;
    }
  }
  return rows;
}

describe('streaming latent harvest', () => {
  const { lm, tokenizer } = tinyLm();
  const sae = { arch: relu, ...tinySae() };
  let ref: Awaited<ReturnType<typeof bruteForce>>;
  let stats: LatentStats;
  beforeAll(async () => {
    ref = await bruteForce(lm, tokenizer, sae.params);
    const h = await harvestLatents(lm, tokenizer, SITE, sae, { corpus: 'brown', split: 'validation', tokens: TOKENS, context: T, batch: 3, engine: jsEngine, stats: { topK: 6, sampled: 5, before: 3, after: 2, scoreSamples: 50 } });
    stats = h.stats;
  });

  it('sees exactly the requested tokens, with the reference firing counts, sums and maxima', () => {
    expect(ref.length).toBe(TOKENS);
    expect(stats.tokensSeen).toBe(TOKENS);
    for (let j = 0; j < M; j++) {
      const acts = ref.map((r) => r.f[j]!).filter((a) => a > 0);
      const borderline = ref.filter((r) => r.f[j]! < 1e-5).length - ref.filter((r) => r.f[j]! === 0).length;
      expect(Math.abs(stats.count[j]! - acts.length)).toBeLessThanOrEqual(borderline);
      expect(stats.max[j]!).toBeCloseTo(Math.max(0, ...acts), 5);
      expect(stats.sum[j]!).toBeCloseTo(acts.reduce((s, a) => s + a, 0), 3);
      let h = 0;
      for (let b = 0; b < stats.hist.length / M; b++) h += stats.hist[j * (stats.hist.length / M) + b]!;
      expect(h).toBe(stats.count[j]);
    }
    expect(stats.count.filter((c) => c > 0).length).toBeGreaterThan(M / 2);
  });

  it('top-k contexts equal the brute-force top-k (activation order, ties to the earlier token), contexts included', () => {
    let compared = 0;
    for (let j = 0; j < M; j++) {
      const want = ref
        .filter((r) => r.f[j]! > 0)
        .sort((a, b) => b.f[j]! - a.f[j]! || a.window - b.window || a.position - b.position)
        .slice(0, 6);
      const got = stats.topContexts(j);
      expect(got.length).toBe(want.length);
      got.forEach((g, r) => {
        expect(g.act).toBeCloseTo(want[r]!.f[j]!, 5);
        // Positions must match unless the reference has a near-tie at this rank (float32 vs float64 ordering).
        const gap = Math.min(r > 0 ? want[r - 1]!.f[j]! - want[r]!.f[j]! : Infinity, r + 1 < want.length ? want[r]!.f[j]! - want[r + 1]!.f[j]! : Infinity);
        if (gap > 1e-5) {
          expect([g.window, g.position]).toEqual([want[r]!.window, want[r]!.position]);
          const w = want[r]!.windowTokens;
          expect(g.tokens).toEqual(w.slice(Math.max(1, g.position - 3), Math.min(w.length, g.position + 3)));
          expect(g.tokens[g.center]).toBe(want[r]!.token);
          compared++;
        }
      });
    }
    expect(compared).toBeGreaterThan(M * 3);
  });

  it('the context sample holds real firings with their activations, min(count, size) of them', () => {
    const at = new Map(ref.map((r) => [`${r.window}/${r.position}`, r]));
    for (let j = 0; j < M; j++) {
      const s = stats.sampledContexts(j);
      expect(s.length).toBe(Math.min(5, stats.count[j]!));
      for (const c of s) {
        const r = at.get(`${c.window}/${c.position}`)!;
        expect(r.f[j]!).toBeCloseTo(c.act, 5);
        expect(c.acts[c.center]).toBeCloseTo(c.act, 5);
      }
    }
  });

  it('holds a fixed amount of state however many tokens it sees', () => {
    const s = new LatentStats(M, { topK: 6, sampled: 5, before: 3, after: 2 });
    const before = s.stateBytes();
    const rows = 64;
    const rng = new Rng(1);
    for (let rep = 0; rep < 50; rep++) {
      const latents = Float32Array.from({ length: rows * M }, () => (rng.uniform() < 0.3 ? rng.uniform() : 0));
      s.observe({ latents, rows, tokens: new Int32Array(rows), pos: new Int8Array(rows).fill(-1), valid: new Uint8Array(rows).fill(1), seqLen: 16, firstWindow: rep * 4 });
    }
    expect(s.tokensSeen).toBe(50 * rows);
    expect(s.stateBytes()).toBe(before);
  });
});

describe('saelab dashboard folder', () => {
  const { lm, tokenizer } = tinyLm();
  const sae = tinySae();
  const saeDir = join(tmp, 'sae');
  const out = join(tmp, 'dash');
  beforeAll(async () => {
    await saveSae(saeDir, relu, sae.cfg, sae.params, { hookName: SITE });
  });

  it('an interrupted run writes nothing; the next run removes the stale partial folder and completes', async () => {
    const ctl = new AbortController();
    ctl.abort();
    const opts = { sae: saeDir, lm: 'longhorn:tiny', out, corpus: 'brown', tokens: 600, context: T, latents: 6, quiet: true };
    await expect(runDashboard(opts, { signal: ctl.signal, lm: { lm, tokenizer } })).rejects.toThrow(/interrupted/);
    expect(existsSync(out)).toBe(false);
    mkdirSync(`${out}.partial/latents`, { recursive: true }); // as if a run died while writing
    const r = await runDashboard(opts, { lm: { lm, tokenizer } });
    expect(r.tokens).toBe(600);
    expect(existsSync(`${out}.partial`)).toBe(false);
    expect(readdirSync(join(out, 'latents')).length).toBe(6);
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    expect(html).toContain('Content-Security-Policy');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  const chromium = findChromium();
  const dom = (url: string, extra: string[] = []) =>
    execFileSync(chromium!, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', ...extra, '--dump-dom', url], {
      encoding: 'utf8',
      timeout: 60_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  const visibleRows = (html: string) => [...html.matchAll(/<tr data-id="(\d+)"[^>]*?( hidden="")?>/g)].filter((m) => !m[2]).map((m) => Number(m[1]));

  it.skipIf(!chromium)('renders in headless Chromium: all rows, search by id and by token, sort by frequency', () => {
    const latents = JSON.parse(readFileSync(join(out, 'latents.json'), 'utf8')).latents as { id: number; topTokens: string[]; frequency: number }[];
    const all = visibleRows(dom(`file://${out}/index.html`));
    expect(all.length).toBe(M);
    expect(visibleRows(dom(`file://${out}/index.html#q=7`))).toEqual([7]);
    // A token some (not all) latents have among their top tokens.
    const counts = new Map<string, number>();
    for (const l of latents) for (const t of new Set(l.topTokens.map((x) => x.trim().toLowerCase()).filter((x) => x.length > 1))) counts.set(t, (counts.get(t) ?? 0) + 1);
    const [token] = [...counts.entries()].filter(([, c]) => c < M).sort((a, b) => b[1] - a[1])[0]!;
    const want = latents.filter((l) => l.topTokens.some((t) => t.toLowerCase().includes(token))).map((l) => l.id);
    const got = visibleRows(dom(`file://${out}/index.html#q=${encodeURIComponent(token)}`));
    expect(got.sort((a, b) => a - b)).toEqual(want);
    expect(got.length).toBeLessThan(M);
    const sorted = visibleRows(dom(`file://${out}/index.html#sort=frequency`));
    const freqs = sorted.map((id) => latents[id]!.frequency);
    expect(freqs).toEqual([...freqs].sort((a, b) => b - a));
  });

  it.skipIf(!chromium)('a latent page highlights tokens with colours that follow the activations', () => {
    const page = readdirSync(join(out, 'latents'))[0]!;
    const html = dom(`file://${out}/latents/${page}`);
    const spans = [...html.matchAll(/<span class="t( c)?" data-act="([^"]+)"[^>]*style="background:\s*rgba\(255,\s*140,\s*0,\s*([\d.]+)\)/g)].map((m) => ({ center: !!m[1], act: Number(m[2]), alpha: Number(m[3]) }));
    expect(spans.length).toBeGreaterThan(20);
    const max = Math.max(...spans.map((s) => s.act));
    for (const s of spans) expect(s.alpha).toBeCloseTo(Math.min(1, Math.max(0, s.act / max)), 2);
    expect(spans.filter((s) => s.center).every((s) => s.act > 0)).toBe(true);
    expect(new Set(spans.map((s) => s.alpha)).size).toBeGreaterThan(3);
    expect(html).toMatch(/Top \d+ activating contexts/);
    expect(html).toMatch(/Logit effects/);
    expect(html).toMatch(/promoted/);
  });

  /** Requests the page made (Chromium's own background requests have initiator "not an origin"; a file page's are "null"). */
  const pageRequests = (url: string): string[] => {
    const log = join(tmp, 'net.json');
    rmSync(log, { force: true });
    dom(url, [`--log-net-log=${log}`, '--net-log-capture-mode=Everything']);
    const j = JSON.parse(readFileSync(log, 'utf8')) as { constants: { logEventTypes: Record<string, number> }; events: { type: number; params?: { url?: string; initiator?: string } }[] };
    const start = j.constants.logEventTypes.URL_REQUEST_START_JOB;
    return j.events.filter((e) => e.type === start && e.params?.url && e.params.initiator !== 'not an origin').map((e) => e.params!.url!);
  };

  it.skipIf(!chromium)('no request leaves the file (Chromium net log; a control page with an external image is caught)', () => {
    const control = join(tmp, 'control.html');
    writeFileSync(control, '<html><body><img src="http://127.0.0.1:9/x.png"></body></html>');
    expect(pageRequests(`file://${control}`)).toEqual(['http://127.0.0.1:9/x.png']);
    const page = readdirSync(join(out, 'latents'))[0]!;
    expect(pageRequests(`file://${out}/index.html#q=the`)).toEqual([]);
    expect(pageRequests(`file://${out}/latents/${page}`)).toEqual([]);
  });
  if (!chromium) it('(headless Chromium is not installed: `apt-get install -y chromium` enables the browser checks)', () => undefined);
});
