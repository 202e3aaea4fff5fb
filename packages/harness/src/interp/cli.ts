/** `saelab probe` and `saelab dashboard`: interpretability of one SAE (docs/interpretability.md). */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { int, withSigint } from '../cli-util.js';
import { runDashboard } from './dashboard.js';
import { PROBE_TASKS } from './probe-data.js';
import { formatProbeReport, runProbe } from './probe.js';

/** A comma-separated list of positive integers, e.g. "1,2,5,20". */
const intList = (flag: string) => (v: string) => {
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 1)) throw new InvalidArgumentError(`${flag} must be positive integers joined by commas, got '${v}'`);
  return xs;
};

/** 'all' or a non-negative integer. */
const latentsArg = (v: string): 'all' | number => {
  if (v === 'all') return 'all';
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`--latents must be 'all' or a non-negative integer, got '${v}'`);
  return n;
};

export function registerInterpCommands(program: Command): void {
  program
    .command('probe')
    .description(
      'k-sparse probing (SAEBench-style): balanced one-vs-rest logistic probes on the top-k latents by mean difference, ' +
        'against the same probes on the raw activations; Brown POS tags (token level), Brown genre, SOTU era and party (document level)',
    )
    .requiredOption('--sae <dir>', 'SAELens folder')
    .requiredOption('--lm <source>', 'llama2c:PATH | onnx:PATH | longhorn:DIR')
    .addOption(new Option('--task <task>', 'probing task').choices(['all', ...PROBE_TASKS]).default('all'))
    .option('--k <list>', 'probe sizes', intList('--k'), [1, 2, 5, 20])
    .option('--site <site>', "hook site (default: the SAE's hook_name)")
    .option('--context <n>', 'window length (BOS first)', int('--context'), 128)
    .option('--seed <s>', 'seed of the balanced sampling', int('--seed'), 0)
    .option('--json', 'print the full results as JSON on stdout')
    .action(async (opts) => {
      const r = await runProbe({ sae: opts.sae, lm: opts.lm, task: opts.task, k: opts.k, site: opts.site, context: opts.context, seed: opts.seed }, (s) =>
        process.stderr.write(`${s}\n`),
      );
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : formatProbeReport(r));
    });

  program
    .command('dashboard')
    .description(
      'latent dashboards: one streaming pass over N tokens keeps top-k and quantile-sampled contexts per latent; writes an offline folder ' +
        '(index.html: sortable, searchable latents, density histogram; a page per latent: contexts, histogram, logit effects, nearest latents)',
    )
    .requiredOption('--sae <dir>', 'SAELens folder')
    .requiredOption('--lm <source>', 'llama2c:PATH | onnx:PATH | longhorn:DIR')
    .requiredOption('--out <dir>', 'output folder (replaced when the run completes)')
    .option('--corpus <names>', "corpora joined by '+' (Brown's POS tags feed the POS-purity score)", 'brown+sotu')
    .addOption(new Option('--split <split>', 'document split').choices(['train', 'validation', 'test']).default('validation'))
    .option('--tokens <n>', 'tokens to stream through the LM and SAE', int('--tokens'), 100_000)
    .option('--latents <n>', "latents that get a page: 'all' or a count (a seeded sample of the latents that fired)", latentsArg, 200)
    .option('--site <site>', "hook site (default: the SAE's hook_name)")
    .option('--context <n>', 'window length (BOS first)', int('--context'), 128)
    .option('--top-k <k>', 'top-activating contexts kept per latent', int('--top-k'), 20)
    .option('--seed <s>', 'seed of the context sample and of the page choice', int('--seed'), 0)
    .option('--quiet', 'no progress bar')
    .action(async (opts) => {
      await withSigint(async (signal) => {
        await runDashboard(
          { sae: opts.sae, lm: opts.lm, out: opts.out, corpus: opts.corpus, split: opts.split, tokens: opts.tokens, latents: opts.latents, site: opts.site, context: opts.context, topK: opts.topK, seed: opts.seed, quiet: !!opts.quiet },
          { signal, log: (s) => process.stderr.write(`${s}\n`) },
        );
      });
    });
}
