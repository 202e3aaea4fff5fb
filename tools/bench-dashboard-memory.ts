/**
 * Dashboard harvest memory as the number of tokens N grows (issue 13): the LatentStats state (fixed by d_sae, top-k,
 * sample sizes and context width), the V8 heap after a forced GC, and the process RSS, after streaming N tokens of
 * brown+sotu validation through an LM and an SAE. Each N runs in the same process, largest last.
 *
 *   node --expose-gc --import tsx tools/bench-dashboard-memory.ts --sae DIR --lm llama2c:../shared/models/stories260K/stories260K.bin [--tokens 10000,40000,160000]
 *
 * Not a test: numbers depend on the machine and its load.
 */
import { parseArgs } from 'node:util';
import { harvestLatents, loadSae, openLanguageModel, saeHookName } from '@saelab/harness';

const { values } = parseArgs({ options: { sae: { type: 'string' }, lm: { type: 'string' }, tokens: { type: 'string', default: '10000,40000,160000' } } });
if (!values.sae || !values.lm) throw new Error('usage: --sae DIR --lm SOURCE [--tokens N,N,...]');
const sae = await loadSae(values.sae);
const site = saeHookName(sae)!;
const { lm, tokenizer } = await openLanguageModel(values.lm);
const gc = (globalThis as { gc?: () => void }).gc;
const mib = (b: number) => (b / 2 ** 20).toFixed(1);
console.log(`SAE ${values.sae} (${sae.arch.name}, d_sae ${sae.cfg.dSae}) on ${values.lm} @ ${site}`);
console.log('| tokens N | state (MiB) | V8 heap after GC (MiB) | RSS (MiB) | harvest s |');
console.log('|---|---|---|---|---|');
for (const n of values.tokens.split(',').map(Number)) {
  const h = await harvestLatents(lm, tokenizer, site, sae, { corpus: 'brown+sotu', split: 'validation', tokens: n, context: 128, batch: 16 });
  gc?.();
  const m = process.memoryUsage();
  console.log(`| ${h.stats.tokensSeen} | ${mib(h.stats.stateBytes())} | ${mib(m.heapUsed)} | ${mib(m.rss)} | ${h.seconds.toFixed(1)} |`);
}
