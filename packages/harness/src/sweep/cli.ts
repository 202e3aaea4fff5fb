/** `saelab sweep` and `saelab sweep-point`. */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { withSigint } from '../cli-util.js';
import { ARCH_NAMES } from '../registry.js';
import { type SweepFlags, expandGrid, loadConfigFile, parseSweepConfig, resolveSweepConfig } from './config.js';
import { SweepInterrupted } from './point.js';
import { runSweep, runSweepPoint } from './run.js';
import { type LauncherFlags, addLauncherOptions, launch, runSweepCalibration } from './launchers/index.js';

const list = (flag: string, parse: (s: string) => number) => (v: string) =>
  v.split(',').map((s) => {
    const n = parse(s.trim());
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`${flag} must be a comma-separated list of numbers, got '${v}'`);
    return n;
  });
const intList = (flag: string) => list(flag, (s) => (/^\d+$/.test(s) ? Number(s) : NaN));
const numList = (flag: string) => list(flag, (s) => (s === '' ? NaN : Number(s)));
const archList = (v: string) =>
  v.split(',').map((a) => {
    if (!(ARCH_NAMES as string[]).includes(a.trim())) throw new InvalidArgumentError(`--archs: unknown architecture '${a}' (choose from ${ARCH_NAMES.join(', ')})`);
    return a.trim();
  });

/** Ctrl-C stops the sweep after the current step with its state saved; the next run resumes. */
async function interruptible<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T | undefined> {
  try {
    return await withSigint(fn);
  } catch (e) {
    if (!(e instanceof SweepInterrupted)) throw e;
    process.stderr.write(`${e.message}\n`);
    process.exitCode = 130;
    return undefined;
  }
}

export function registerSweepCommands(program: Command): void {
  const sweep = program
    .command('sweep')
    .description('Pareto frontiers: train a grid of SAEs (architectures × L0 targets × seeds), evaluate, plot, report')
    .option('--preset <name>', 'smoke | default | full (see packages/harness/sweep-presets/)')
    .option('--config <file>', 'sweep config (JSON, or a TS module with a default export); a --preset is merged under it')
    .option('--source <src>', 'default | llama2c:PATH | longhorn:DIR')
    .option('--activations <path>', 'pre-harvested activations (store folder, .npy, .safetensors) instead of an LM')
    .option('--site <site>', 'hook site (default: residual stream after the middle layer)')
    .option('--archs <list>', `architectures, comma-separated (${ARCH_NAMES.join(',')})`, archList)
    .option('--l0 <list>', 'shared L0 targets, comma-separated', intList('--l0'))
    .option('--seeds <list>', 'seeds, comma-separated', intList('--seeds'))
    .option('--expansions <list>', 'dictionary sizes as multiples of d_in, comma-separated', numList('--expansions'))
    .option('--tokens <n>', 'training tokens per point', (v) => intList('--tokens')(v)[0])
    .option('--set <path=value...>', 'override any config field, e.g. --set training.lr=0.001 archs.topk.batch=512')
    .option('--out <dir>', 'run folder (default runs/sweep-<name>-<time>/)')
    .option('--cache-dir <dir>', 'cache of LMs, data and points (default .cache/saelab, or $SAELAB_CACHE_DIR)')
    .option('--jobs <n>', 'run points in N parallel `saelab sweep-point` processes', (v) => intList('--jobs')(v)[0], 1)
    .option('--prepare-only', 'build the LM and harvest the data (cached), write the run folder\'s sweep-config.json, stop (before fan-out)')
    .option('--print-config', 'print the resolved config as JSON and exit')
    .option('--list-points', 'print the point ids and exit')
    .option('--quiet', 'no progress bars');
  addLauncherOptions(sweep)
    .action(async (opts) => {
      const flags: SweepFlags = { ...opts, archs: opts.archs, set: opts.set };
      const config = await resolveSweepConfig(flags);
      if (opts.printConfig) {
        process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
        return;
      }
      if (opts.listPoints) {
        for (const p of expandGrid(config)) process.stdout.write(`${p.id}\n`);
        return;
      }
      const command = `saelab sweep ${process.argv.slice(3).join(' ')}`.trim();
      if (opts.launcher !== 'local') {
        const dir = await interruptible((signal) => launch(config, opts as LauncherFlags, command, signal));
        if (dir) process.stdout.write(`${dir}\n`);
        return;
      }
      const r = await interruptible((signal) => runSweep({ config, cacheDir: opts.cacheDir, out: opts.out, jobs: opts.jobs, quiet: opts.quiet, signal, command, prepareOnly: opts.prepareOnly }));
      if (r && !opts.prepareOnly) process.stderr.write(`\nrun folder: ${r.runDir}\n  report: ${r.runDir}/report.html\n`);
      if (r) process.stdout.write(`${r.runDir}\n`);
    });

  program
    .command('sweep-point')
    .description('run one point of a sweep into the shared cache (fan-out); `saelab sweep` with the same config merges')
    .requiredOption('--config <file>', "sweep config (e.g. a run folder's sweep-config.json)")
    .requiredOption('--point <id>', 'point id (see `saelab sweep --list-points`)')
    .addOption(new Option('--cache-dir <dir>', 'cache folder (must be the one the merging sweep uses)'))
    .option('--quiet', 'no progress bar')
    .option('--calibrate-only', "only the point's λ calibration (cached; the dependent stage schedulers run first); nothing for TopK or explicit λ")
    .action(async (opts) => {
      const config = parseSweepConfig(await loadConfigFile(opts.config), opts.config);
      if (opts.calibrateOnly) {
        const r = await interruptible((signal) => runSweepCalibration({ config, pointId: opts.point, cacheDir: opts.cacheDir, quiet: opts.quiet, signal }));
        process.stderr.write(r ? `calibrated ${opts.point}: λ ${r.lambda.toPrecision(4)} → L0 ${r.l0.toFixed(1)}\n` : `${opts.point} needs no calibration\n`);
        return;
      }
      const r = await interruptible((signal) => runSweepPoint({ config, pointId: opts.point, cacheDir: opts.cacheDir, quiet: opts.quiet, signal }));
      if (r) {
        process.stderr.write(`${r.cached ? 'cached' : 'trained'} ${opts.point}: L0 ${r.result.metrics.l0.mean.toFixed(1)}, FVU ${r.result.metrics.fvu?.toFixed(4)}${r.result.lm ? `, ΔLM ${r.result.lm.deltaLoss.toFixed(4)}` : ''}\n`);
        process.stdout.write(`${r.dir}\n`);
      }
    });
}
