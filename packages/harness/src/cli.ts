/**
 * The `saelab` command line. Each command validates its flags with zod (errors name the flag) and calls a plain
 * async function that can also be imported.
 */
import { Command, CommanderError, Option } from 'commander';
import { int, num, withSigint } from './cli-util.js';
import { runCodec } from './codec.js';
import { openActivations } from './data.js';
import { evaluateSae, lmFidelity, metricsJson } from './evaluate.js';
import { openLanguageModel } from './lm-sources.js';
import { corpusWindows } from '@saelab/activations';
import { ARCH_NAMES, getArchitecture } from './registry.js';
import type { SaeArchitecture } from '@saelab/core';
import { type LoadedSae, loadSae } from './sae-folder.js';
import { trainSae } from './train.js';
import { registerDataCommands } from './data-commands.js';
import { registerSweepCommands } from './sweep/cli.js';
import { registerInterpCommands } from './interp/cli.js';

/** The registered architectures that `uses`, as "a / b / c" for help texts. */
const archsReading = (uses: (a: SaeArchitecture<any, any>) => boolean) => ARCH_NAMES.filter((n) => uses(getArchitecture(n))).join(' / ');

export function buildProgram(): Command {
  const program = new Command('saelab')
    .description('Sparse autoencoders (ReLU, Gated, TopK, JumpReLU) on language-model activations, on CPU.')
    .showHelpAfterError()
    // Throw instead of calling process.exit, so main() can be called in-process (tests, scripts); subcommands
    // created below inherit both settings.
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) });

  program
    .command('train')
    .description('train one SAE and write an SAELens folder (weights in raw activation space, metrics in cfg.json)')
    .addOption(new Option('--arch <name>', 'architecture').choices(ARCH_NAMES).makeOptionMandatory())
    .requiredOption('--activations <file>', 'activations: .npy [N, d] (float32/float16) or .safetensors[#tensor]')
    .requiredOption('--out <dir>', 'output SAELens folder')
    .option('--sparsity <value>', `λ for ${archsReading((a) => a.sparsity.flag === 'sparsity')} (default: the recipe value)`, num('--sparsity'))
    .option('--k <k>', `active latents per row for ${archsReading((a) => a.sparsity.flag === 'k')} (on average, for batch-level selection)`, int('--k'))
    .option('--d-sae <m>', 'dictionary size', int('--d-sae'))
    .option('--expansion <e>', 'dictionary size as a multiple of d_in (default 8)', num('--expansion'))
    .option('--steps <n>', 'training steps', int('--steps'))
    .option('--tokens <t>', 'training tokens (steps = ceil(t / batch)); default: one pass over the training rows', int('--tokens'))
    .option('--batch <b>', 'rows per step', int('--batch'), 4096)
    .option('--lr <lr>', 'learning rate (default: the recipe value)', num('--lr'))
    .addOption(new Option('--optimizer <kind>', 'optimiser (default: the recipe: adam)').choices(['adam', 'sgd']))
    .option('--seed <s>', 'random seed (init, shuffling)', int('--seed'), 0)
    .option('--init <dir>', 'start from an existing SAELens folder (exact weights; trains without normalisation)')
    .addOption(new Option('--normalize <mode>', 'scale inputs so E‖x‖² = 1 during training').choices(['auto', 'none']).default('auto'))
    .addOption(
      new Option('--b-dec-init <mode>', 'b_dec at init: zero, or the geometric median of a training sample (TopK paper)')
        .choices(['zero', 'geometric-median'])
        .default('zero'),
    )
    .option('--lr-warmup <steps>', 'linear LR warm-up steps', int('--lr-warmup'))
    .option('--sparsity-warmup <steps>', 'linear λ warm-up steps', int('--sparsity-warmup'))
    .addOption(new Option('--lr-schedule <kind>', 'LR schedule after warm-up').choices(['constant', 'cosine', 'linear-decay']))
    .option('--grad-clip <norm>', 'global gradient-norm clip (0 = off)', num('--grad-clip'))
    .option('--resample', 'resample dead latents (core sae/resample.ts) even where the recipe does not')
    .option('--no-resample', 'do not resample dead latents (ReLU and Gated do by default, as their papers trained)')
    .option('--eval-rows <n>', 'held-out rows at the end of the input for metrics (default 5%, ≤ 16384; 0: train on all rows, no metrics)', int('--eval-rows'))
    .option('--checkpoint-every <steps>', 'write the resumable training state every N steps', int('--checkpoint-every'), 200)
    .option('--dead-tokens <n>', `${archsReading((a) => a.runOptions?.includes('deadTokens') === true)}: tokens without firing before a latent is dead (AuxK)`, int('--dead-tokens'))
    .option('--l0-target <l0>', 'λ-based archs: a controller moves λ during training to land on this mean L0 (to the last step; --sparsity = start)', num('--l0-target'))
    .option('--quiet', 'no progress bar')
    .action(async (opts) => {
      await withSigint(async (signal) => {
        const r = await trainSae(opts, { signal });
        if (r.interrupted) process.exitCode = 130;
        else {
          const m = r.metrics;
          const held = m ? `held-out L0 ${m.l0.mean.toFixed(2)}, FVU ${m.fvu?.toFixed(4)}, MSE ${m.mse.toPrecision(4)}` : 'no held-out rows (--eval-rows 0): no metrics';
          process.stderr.write(`wrote ${r.out}: ${r.steps} steps, ${Math.round(r.tokensPerSecond)} tok/s; ${held}\n`);
        }
      });
    });

  program
    .command('eval')
    .description(
      'metrics of an SAE on activations: L0, MSE, FVU, explained variance, shrinkage, dead and dense fractions; ' +
        'with --lm also ΔLM loss and CE recovered, by splicing x̂ into the language model on held-out text',
    )
    .requiredOption('--sae <dir>', 'SAELens folder')
    .requiredOption('--activations <file>', '.npy, .safetensors or an activation-store folder (all rows are evaluated)')
    .option('--batch <b>', 'rows per batch', int('--batch'), 4096)
    .option('--lm <source>', 'also splice into this LM: llama2c:PATH | onnx:PATH | longhorn:DIR')
    .option("--site <site>", "hook site for --lm (default: the SAE's hook_name, else the store's site)")
    .option('--corpus <names>', "text for --lm, corpora joined by '+'", 'sotu+brown')
    .addOption(new Option('--split <split>', 'document split for --lm (held out from harvests on train)').choices(['train', 'validation', 'test']).default('validation'))
    .option('--context <n>', 'window length for --lm (BOS first)', int('--context'), 128)
    .option('--lm-windows <n>', 'windows of text for --lm', int('--lm-windows'), 64)
    .option('--json', 'print the metrics as JSON on stdout')
    .action(async (opts) => {
      const sae = await loadSae(opts.sae);
      const data = await openActivations(opts.activations);
      try {
        const m = await evaluateSae(sae, data, { batch: opts.batch });
        const lm = opts.lm ? await spliceMetrics(sae, opts, data.site) : null;
        if (opts.json) process.stdout.write(`${JSON.stringify({ ...metricsJson(m), ...(lm ? { lm } : {}) }, null, 2)}\n`);
        else {
          const rows: [string, string][] = [
            ['rows', String(m.rows)],
            ['L0 (mean, p10/p50/p90)', `${m.l0.mean.toFixed(3)} (${m.l0.p10}/${m.l0.p50}/${m.l0.p90})`],
            ['MSE', m.mse.toPrecision(6)],
            ['FVU', String(m.fvu?.toPrecision(6))],
            ['explained variance', String(m.explainedVariance?.toPrecision(6))],
            ['shrinkage γ', String(m.shrinkage?.toPrecision(6))],
            ['dead fraction', m.deadFraction.toFixed(4)],
            ['dense fraction (>10%)', m.denseFraction.toFixed(4)],
          ];
          if (lm) {
            rows.push(
              [`CE clean / SAE / zero`, `${lm.ceClean.toFixed(4)} / ${lm.ceSpliced.toFixed(4)} / ${lm.ceZero.toFixed(4)} nats (${lm.site}, ${lm.tokens} tokens)`],
              ['ΔLM loss', `${lm.deltaLoss.toFixed(4)} nats/token`],
              ['CE recovered', lm.ceRecovered === null ? 'n/a (CE_zero = CE_clean: zero-ablating the site costs nothing)' : lm.ceRecovered.toFixed(4)],
            );
          }
          for (const [k, v] of rows) process.stdout.write(`${k.padEnd(26)} ${v}\n`);
        }
      } finally {
        await data.close();
      }
    });

  for (const kind of ['encode', 'reconstruct'] as const) {
    program
      .command(kind)
      .description(kind === 'encode' ? 'latents [N, d_sae] of every row, as float32 .npy' : 'reconstructions x̂ [N, d_in], as float32 .npy')
      .requiredOption('--sae <dir>', 'SAELens folder')
      .requiredOption('--activations <file>', '.npy or .safetensors activations')
      .requiredOption('--out <file>', 'output .npy')
      .option('--batch <b>', 'rows per batch', int('--batch'), 4096)
      .action(async (opts) => {
        const r = await runCodec(kind, opts);
        process.stderr.write(`wrote ${opts.out} [${r.rows} × ${r.cols}]\n`);
      });
  }
  registerDataCommands(program);
  registerSweepCommands(program);
  registerInterpCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    // Commander has already printed its own message (bad flag, --help, --version); just pass its exit code on.
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
      return;
    }
    process.stderr.write(`saelab: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}

/** `eval --lm`: ΔLM loss and CE recovered on the first full windows of a held-out corpus split. */
async function spliceMetrics(
  sae: LoadedSae,
  opts: { lm: string; site?: string; corpus: string; split: 'train' | 'validation' | 'test'; context: number; lmWindows: number },
  storeSite: string | undefined,
) {
  // SAELens ≥ 6 keeps the hook under `metadata`; older cfg.json files have it at the top level.
  const meta = (sae.json.metadata ?? {}) as Record<string, unknown>;
  const hookName = [meta.hook_name, sae.json.hook_name].find((h): h is string => typeof h === 'string');
  const site = opts.site ?? hookName ?? storeSite;
  if (!site) throw new Error('--lm needs --site: neither the SAE (hook_name) nor the activations name a hook site');
  const { lm, tokenizer } = await openLanguageModel(opts.lm);
  const windows = corpusWindows({ corpus: opts.corpus, split: opts.split, tokenizer, contextLength: opts.context, count: opts.lmWindows });
  if (windows.batch === 0) throw new Error(`--lm: the ${opts.corpus} ${opts.split} split has no full window of ${opts.context} tokens`);
  return { site, windows: windows.batch, ...(await lmFidelity(lm, windows, site, sae)) };
}
