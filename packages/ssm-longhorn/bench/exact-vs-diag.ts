/**
 * Exact vs diagonal Longhorn update on trained models (issue 14, item 5): for every trained Longhorn model folder
 * of an MQAR grid (runs/<grid>/longhorn-{diag,exact}-…), capture each layer's scan inputs (x, z_β, k, q) on held-out
 * MQAR sequences at the trained length L and at 8L (8N pairs), and measure with `diagonalGap` (src/diag-gap.ts):
 * the one-step relative gap ‖(I − εkkᵀ)S − (1 − εk²)⊙S‖/‖S‖ along the model's own trajectory, the online-regression
 * residual ‖S_t k_t − x_t‖/‖x_t‖ under both updates, and the gap between the two updates' outputs.
 *
 *   npx tsx packages/ssm-longhorn/bench/exact-vs-diag.ts [--grid mqar-cells] [--examples 32] [--name exact-vs-diag]
 *
 * Writes results/<name>.{json,md} atomically.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Rng, createOrtEngine, writeFileAtomic } from '@saelab/core';
import { type DiagGapStats, diagonalGap, loadModel, mixerDims, mqarBatch } from '../src/index.js';

const { values: a } = parseArgs({
  options: {
    grid: { type: 'string', default: 'mqar-cells' },
    examples: { type: 'string', default: '32' },
    factors: { type: 'string', default: '1,8' },
    name: { type: 'string', default: 'exact-vs-diag' },
  },
});
const engine = createOrtEngine({ threads: 1 });
const runsDir = join(import.meta.dirname, '..', 'runs', a.grid!);
// Only finished runs (a row in results/<grid>.json): a folder of an unfinished run holds a mid-training checkpoint.
const gridJson = join(import.meta.dirname, '..', 'results', `${a.grid}.json`);
const finished = new Set(
  existsSync(gridJson)
    ? (JSON.parse(readFileSync(gridJson, 'utf8')).rows as { model: string; dModel: number; seqLen: number; numKvPairs: number; lr: number; seed: number }[])
        .map((r) => `${r.model}-d${r.dModel}-L${r.seqLen}-N${r.numKvPairs}-lr${r.lr}-s${r.seed}`)
    : [],
);
const dirs = existsSync(runsDir) ? readdirSync(runsDir).filter((d) => /^longhorn-(diag|exact)-/.test(d) && finished.has(d)) : [];
const factors = a.factors!.split(',').map(Number);
const E = Number(a.examples);

interface Row extends DiagGapStats {
  run: string;
  variant: string;
  layer: number;
  seqLen: number;
  numKvPairs: number;
}
const rows: Row[] = [];
for (const run of dirs.sort()) {
  const m = /L(\d+)-N(\d+)-.*-s(\d+)$/.exec(run);
  if (!m) continue;
  const [L, N, seed] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const lm = await loadModel(join(runsDir, run), engine);
  const variant = lm.config.variant as 'longhorn-diag' | 'longhorn-exact';
  const md = mixerDims(lm.config);
  for (const f of factors) {
    // held-out sequences: a seed stream none of the training, validation or test sets use
    const data = mqarBatch({ vocabSize: lm.config.vocabSize, seqLen: f * L, numKvPairs: f * N }, E, new Rng(4_000_000 + 1000 * f + seed));
    const { cache } = await lm.forward(data.tokens, E, f * L, { keepCache: true });
    cache!.mixers.forEach((c, layer) => {
      const s = diagonalGap({ batch: E, seqLen: f * L, dInner: md.dInner, dState: md.dState }, { x: c.xs.data, z: c.zb, k: c.k, q: c.q }, variant);
      rows.push({ run, variant, layer, seqLen: f * L, numKvPairs: f * N, ...s });
      console.error(`${run} layer ${layer} @${f * L}: gap ${s.relGap.toFixed(4)}, residual diag ${s.residualDiag.toFixed(4)} / exact ${s.residualExact.toFixed(4)}, output gap ${s.outputGap.toFixed(4)}`);
    });
  }
}
const resultsDir = join(import.meta.dirname, '..', 'results');
const note = `per-layer means over ${E} held-out MQAR sequences × time steps t ≥ 1; trained models from runs/${a.grid}`;
await writeFileAtomic(join(resultsDir, `${a.name}.json`), JSON.stringify({ note, rows }, null, 2) + '\n');
const md = [
  `# Exact vs diagonal Longhorn update on trained models (${a.name})`,
  '',
  `${note}. relGap = ‖(I − εkkᵀ)S − (1 − εk²)⊙S‖_F / ‖S‖_F from the same state S_{t−1} (the trajectory of the update the model was trained with); ` +
    'residual = ‖S_t k_t − x_t‖ / ‖x_t‖ after the step, along each update\'s own trajectory with the model\'s inputs; output gap = ‖y_exact − y_diag‖ / ‖y_diag‖. ' +
    'Reproduce: `npx tsx packages/ssm-longhorn/bench/exact-vs-diag.ts` after the MQAR grid has trained its models.',
  '',
  '| run | trained with | layer | seq len (N) | rel. gap | residual diag | residual exact | output gap |',
  '|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.run} | ${r.variant} | ${r.layer} | ${r.seqLen} (${r.numKvPairs}) | ${r.relGap.toFixed(4)} | ${r.residualDiag.toFixed(4)} | ${r.residualExact.toFixed(4)} | ${r.outputGap.toFixed(4)} |`),
  '',
];
await writeFileAtomic(join(resultsDir, `${a.name}.md`), md.join('\n'));
if (!rows.length) console.error(`no trained Longhorn models under ${runsDir}`);
