/**
 * Measures harvest throughput from stories260K (rows/s and tokens/s) on a short run.
 * Usage: npx tsx packages/activations/scripts/bench-harvest.ts [rows=100000] [site=blocks.2.hook_resid_post] [ctx=128] [batch=16]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { harvest } from '../src/harvest.js';

const models = process.env.SAELAB_MODELS_DIR ?? join(import.meta.dirname, '../../../../shared/models');
const [rows = '100000', site = 'blocks.2.hook_resid_post', ctx = '128', batch = '16'] = process.argv.slice(2);
const out = mkdtempSync(join(tmpdir(), 'harvest-bench-'));
const t0 = performance.now();
let last = 0;
const m = await harvest(
  {
    source: `llama2c:${join(models, 'stories260K/stories260K.bin')}`,
    site,
    corpus: 'sotu+brown',
    split: 'train',
    tokens: Number(rows),
    contextLength: Number(ctx),
    batchSize: Number(batch),
    out,
  },
  (p) => {
    if (p.elapsedSeconds - last > 5) {
      last = p.elapsedSeconds;
      process.stderr.write(`  ${p.rows}/${p.target} rows, ${p.tokensPerSecond.toFixed(0)} tok/s, ${p.rowsPerSecond.toFixed(0)} rows/s\n`);
    }
  },
);
const s = (performance.now() - t0) / 1000;
console.log(`${m.rows} rows of d=${m.d} at ${site} in ${s.toFixed(1)} s (incl. loading + tokenizing): ${(m.rows / s).toFixed(0)} rows/s; C=${m.scale?.C.toFixed(3)}; shards=${m.shards.length}`);
rmSync(out, { recursive: true });
