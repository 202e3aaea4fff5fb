/** `saelab probe` and `saelab dashboard`: interpretability of one SAE (docs/interpretability.md). */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { int } from '../cli-util.js';
import { PROBE_TASKS } from './probe-data.js';
import { formatProbeReport, runProbe } from './probe.js';

/** A comma-separated list of positive integers, e.g. "1,2,5,20". */
const intList = (flag: string) => (v: string) => {
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 1)) throw new InvalidArgumentError(`${flag} must be positive integers joined by commas, got '${v}'`);
  return xs;
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
}
