/**
 * The sweep's harvest from a pretrained llama2.c model (stories260K): BOS rows are dropped at every position —
 * at each window start and where BOS separates two documents inside a window — so the SAEs never train or get
 * evaluated on a special token (docs/specs/metrics-and-sweeps.md), matching the splice, which leaves BOS rows unedited.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Llama2cModel, createTokenizer } from '@saelab/activations';
import { parseSweepConfig, prepareSweepData } from '../src/sweep/index.js';
import { encodeStream, shuffledDocuments } from '../src/sweep/tokens.js';

const models = process.env.SAELAB_MODELS_DIR ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/models');
const bin = join(models, 'stories260K', 'stories260K.bin');
const tok = join(models, 'stories260K', 'tok512.bin');
const have = existsSync(bin) && existsSync(tok);
if (!have) console.warn(`stories260K not found at ${dirname(bin)} (set SAELAB_MODELS_DIR): skipping the llama2.c sweep-harvest test`);
const cache = mkdtempSync(join(tmpdir(), 'saelab-sweep-data-'));
afterAll(() => rmSync(cache, { recursive: true, force: true }));

describe.skipIf(!have)('sweep data from llama2.c', () => {
  it('drops every BOS row, including mid-window document separators, and keeps the others in order', async () => {
    const T = 64;
    const body = T - 1;
    const site = 'blocks.2.hook_resid_post';
    const tokenizer = createTokenizer(`llama2c:${tok}`, 512);
    const bos = tokenizer.bos!;
    // Enough tokens that the first document ends inside the harvest.
    const firstDoc = encodeStream(shuffledDocuments('sotu+brown', 'train', 0).slice(0, 1), (t) => tokenizer.encode(t), bos, {});
    const trainTokens = firstDoc.length + 3 * body;
    const c = parseSweepConfig({
      name: 't',
      source: `llama2c:${bin}`,
      site,
      data: { contextLength: T, trainTokens, evalTokens: 2 * body, batch: 8 },
      grid: { architectures: ['topk'], l0Targets: [4], seeds: [0] },
      training: { tokens: 1000, batch: 100 },
    });
    const data = await prepareSweepData(c, cache, () => {}, true);
    try {
      const windows = Math.ceil(trainTokens / body);
      const stream = encodeStream(shuffledDocuments('sotu+brown', 'train', 0), (t) => tokenizer.encode(t), bos, { maxTokens: windows * body });
      const bosInside = stream.reduce((n, t) => n + (t === bos ? 1 : 0), 0);
      expect(bosInside).toBeGreaterThanOrEqual(1);
      expect(data.trainRows).toBe(windows * body - bosInside);

      // The window holding the first separator, run directly: its non-BOS rows, in order, are what was stored.
      const w = Math.floor(stream.indexOf(bos) / body);
      const ids = Int32Array.from([bos, ...stream.subarray(w * body, (w + 1) * body)]);
      const acts = (await Llama2cModel.load(bin).run(ids, 1, T, { read: [site], skipLogits: true })).acts[site]!.data;
      const d = data.d;
      const keep = [...ids.keys()].filter((i) => ids[i] !== bos);
      expect(keep.length).toBeLessThan(body); // the separator was dropped
      let offset = 0;
      for (let v = 0; v < w; v++) offset += body - stream.subarray(v * body, (v + 1) * body).filter((t) => t === bos).length;
      const stored = await data.combined.readRows(offset, keep.length);
      keep.forEach((pos, i) => {
        for (let j = 0; j < d; j++) expect(stored[i * d + j]).toBeCloseTo(acts[pos * d + j]!, 4);
      });
    } finally {
      await data.close();
    }
  });
});
