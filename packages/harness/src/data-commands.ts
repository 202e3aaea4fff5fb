/** `saelab generate` and `saelab harvest`: thin CLI wrappers over @saelab/activations. */
import cliProgress from 'cli-progress';
import { type Command, Option } from 'commander';
import { CorpusNameSchema, generate, harvest } from '@saelab/activations';
import { int, num } from './cli-util.js';
import { openLanguageModel } from './lm-sources.js';

export function registerDataCommands(program: Command): void {
  program
    .command('generate')
    .description('sample text from a llama2.c checkpoint, printing exactly what llama2.c run.c prints')
    .requiredOption('--model <source>', 'llama2c:PATH (a llama2.c .bin checkpoint)')
    .requiredOption('--tokenizer <file>', 'llama2.c tokenizer (tokenizer.bin / tok512.bin)')
    .option('--prompt <text>', 'prompt', '')
    .option('--steps <n>', 'positions to run (0 = the model context)', int('--steps'), 256)
    .option('--temperature <t>', '0 = greedy', num('--temperature'), 1)
    .option('--topp <p>', 'nucleus sampling threshold', num('--topp'), 0.9)
    .option('--seed <s>', 'sampling seed (default: time, as run.c)', int('--seed'))
    .action(async (opts) => {
      const r = await generate(
        { model: opts.model, tokenizer: opts.tokenizer, prompt: opts.prompt, steps: opts.steps, temperature: opts.temperature, topp: opts.topp, seed: opts.seed },
        (chunk) => process.stdout.write(chunk),
      );
      process.stderr.write(`achieved tok/s: ${r.tokensPerSecond.toFixed(1)}\n`);
    });

  program
    .command('harvest')
    .description('run a language model over a corpus and store activations at one hook site (sharded .npy + manifest)')
    .requiredOption('--source <source>', 'llama2c:PATH | onnx:PATH | longhorn:DIR (a trained saelab Longhorn LM)')
    .requiredOption('--site <site>', 'hook site, e.g. blocks.2.hook_resid_post')
    .requiredOption('--tokens <n>', 'activation rows to store (BOS and padding rows excluded)', int('--tokens'))
    .requiredOption('--out <dir>', 'store folder (an interrupted harvest into the same folder resumes)')
    .option('--corpus <names>', `corpora joined by '+': ${CorpusNameSchema.options.join(', ')}`, 'sotu+brown')
    .addOption(new Option('--split <split>', 'document split').choices(['train', 'validation', 'test']).default('train'))
    .option('--context <n>', 'context length (tokens per window, BOS first)', int('--context'), 128)
    .option('--batch <n>', 'windows per forward pass', int('--batch'), 16)
    .option('--tokenizer <spec>', 'gpt2 | llama2c:PATH (default: the one beside a llama2.c checkpoint)')
    .addOption(new Option('--dtype <dtype>', 'stored precision').choices(['float32', 'float16']).default('float32'))
    .option('--quiet', 'no progress bar')
    .action(async (opts) => {
      const bar = opts.quiet
        ? null
        : new cliProgress.SingleBar(
            { format: 'harvest {bar} {value}/{total} rows | {tps} tok/s | ETA {eta_formatted}', stream: process.stderr, noTTYOutput: true, notTTYSchedule: 5000 },
            cliProgress.Presets.shades_classic,
          );
      let started = false;
      const model = opts.source.startsWith('longhorn:') ? await openLanguageModel(opts.source) : undefined;
      const manifest = await harvest(
        {
          source: opts.source,
          site: opts.site,
          tokens: opts.tokens,
          out: opts.out,
          corpus: opts.corpus,
          split: opts.split,
          contextLength: opts.context,
          batchSize: opts.batch,
          tokenizer: opts.tokenizer,
          dtype: opts.dtype,
        },
        (p) => {
          if (!started) {
            bar?.start(p.target, p.rows, { tps: '-' });
            started = true;
          }
          bar?.update(p.rows, { tps: Math.round(p.tokensPerSecond) });
        },
        model,
      );
      bar?.stop();
      process.stderr.write(`wrote ${opts.out}: ${manifest.rows} rows × ${manifest.d} (${manifest.dtype}), scale C = ${manifest.scale?.C.toPrecision(5)}\n`);
    });
}
