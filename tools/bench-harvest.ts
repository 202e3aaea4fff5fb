/**
 * Harvest throughput (issue 6): activation rows per second written by `harvest` (the code behind `saelab harvest`)
 * from stories260K (llama2.c, ../shared/models) and from a Longhorn LM of the default sweep's shape (d 64, 4 layers,
 * vocabulary 2048 — speed does not depend on the weights, so it is freshly initialised), with the time split into
 * tokenisation, the LM forward (up to the hooked layer) and the rest (copies, shard writes, hashing, manifest).
 *
 *   npx tsx tools/bench-harvest.ts [--rows 100000] [--context 128] [--batch 16] [--source stories|longhorn|both]
 *
 * Not a test: numbers depend on the machine and its load.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type TextTokenizer, gpt2Tokenizer, harvest, loadCorpora } from '@saelab/activations';
import { openLanguageModel } from '@saelab/harness';
import type { HookableLM } from '@saelab/core';
import { LonghornLM, buildVocab, restrictTokenizer } from '@saelab/ssm-longhorn';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '100000' },
    context: { type: 'string', default: '128' },
    batch: { type: 'string', default: '16' },
    source: { type: 'string', default: 'both' },
  },
});
const rows = Number(values.rows);
const stories = join(import.meta.dirname, '..', '..', 'shared', 'models', 'stories260K', 'stories260K.bin');

/** Wraps an LM and a tokenizer so their time is counted. */
function timed(lm: HookableLM, tok: TextTokenizer) {
  const t = { forward: 0, tokenize: 0 };
  const lmT: HookableLM = Object.create(lm);
  lmT.run = async (...args: Parameters<HookableLM['run']>) => {
    const t0 = performance.now();
    try {
      return await lm.run(...args);
    } finally {
      t.forward += performance.now() - t0;
    }
  };
  const tokT: TextTokenizer = Object.create(tok);
  tokT.encode = (text: string) => {
    const t0 = performance.now();
    try {
      return tok.encode(text);
    } finally {
      t.tokenize += performance.now() - t0;
    }
  };
  return { lm: lmT, tokenizer: tokT, t };
}

async function bench(name: string, source: string, site: string, model: { lm: HookableLM; tokenizer: TextTokenizer }) {
  const out = mkdtempSync(join(os.tmpdir(), 'saelab-bench-harvest-'));
  const w = timed(model.lm, model.tokenizer);
  const t0 = performance.now();
  let tokensRun = 0;
  try {
    const m = await harvest(
      { source, site, tokens: rows, out, corpus: 'sotu+brown', split: 'train', contextLength: Number(values.context), batchSize: Number(values.batch) },
      (p) => (tokensRun = p.tokensPerSecond * p.elapsedSeconds),
      { lm: w.lm, tokenizer: w.tokenizer },
    );
    const ms = performance.now() - t0;
    const other = ms - w.t.forward - w.t.tokenize;
    const pct = (x: number) => `${((100 * x) / ms).toFixed(0)}%`;
    console.log(
      `| ${name} | ${site} | ${m.rows} | ${Math.round(m.rows / (ms / 1000))} | ${Math.round(tokensRun / (ms / 1000))} | ` +
        `${pct(w.t.tokenize)} / ${pct(w.t.forward)} / ${pct(other)} |`,
    );
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

console.log(`machine: ${os.cpus().length}× ${os.cpus()[0]?.model}, node ${process.version}, load ${os.loadavg()[0]!.toFixed(2)}; ${rows} rows, context ${values.context}, batch ${values.batch}`);
console.log('| source | site | rows | rows/s | LM tokens/s | time: tokenise / forward / rest |');
console.log('|---|---|---|---|---|---|');
if (values.source !== 'longhorn') {
  if (!existsSync(stories)) console.log(`| stories260K | - | skipped: ${stories} not found |`);
  else {
    const src = `llama2c:${stories}`;
    await bench('stories260K (llama2.c)', src, 'blocks.2.hook_resid_post', await openLanguageModel(src));
  }
}
if (values.source !== 'stories') {
  const gpt2 = gpt2Tokenizer();
  const sample = loadCorpora('sotu+brown', 'train').slice(0, 40).map((d: { text: string }) => d.text).join('\n');
  const vocab = buildVocab(gpt2.name, gpt2.encode(sample), 2048);
  const lm = LonghornLM.create({ vocabSize: 2048, dModel: 64, nLayers: 4, dState: 16 }, 0);
  await bench('Longhorn LM (d 64, 4 layers)', 'longhorn:bench', 'blocks.1.hook_resid_post', { lm, tokenizer: restrictTokenizer(gpt2, vocab) });
}
