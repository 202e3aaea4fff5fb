/**
 * `saelab sweep --launcher local|slurm|k8s`: the CLI side of the launchers (options and dispatch), so the sweep
 * command itself only forwards to here.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { SweepConfig } from '../config.js';
import { writeK8sManifests } from './k8s.js';
import { runSlurmSweep } from './slurm.js';

export { planStages, runSweepCalibration, type StagePlan } from './stages.js';
export { runSlurmSweep, type SlurmSweepOptions, type SlurmSweepResult } from './slurm.js';
export { writeK8sManifests, type K8sOptions } from './k8s.js';

export const LAUNCHERS = ['local', 'slurm', 'k8s'] as const;

const positive = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError(`${flag} must be a positive number, got '${v}'`);
  return n;
};

export function addLauncherOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--launcher <where>', 'where the points run: here, a Slurm array job, or Kubernetes Indexed Jobs (docs/sweep.md)').choices(LAUNCHERS).default('local'))
    .option('--slurm-args <args>', 'extra sbatch options for the array jobs, e.g. "--partition=cpu --time=02:00:00"')
    .option('--no-wait', 'slurm: submit and return; run the same command again to wait and merge')
    .option('--dry-run', 'slurm: write the batch scripts and print the sbatch commands; k8s: write the manifests (required)')
    .option('--k8s-image <image>', 'k8s: container image holding this repository with `npm ci` done', 'saelab:latest')
    .option('--k8s-volume-claim <name>', 'k8s: ReadWriteMany PersistentVolumeClaim mounted as the shared cache', 'saelab-cache')
    .option('--k8s-parallelism <n>', 'k8s: pods of one stage running at once (default: all)', (v) => positive('--k8s-parallelism')(v))
    .addOption(new Option('--slurm-poll <seconds>', 'slurm: seconds between squeue polls').argParser(positive('--slurm-poll')).default(10));
}

export interface LauncherFlags {
  launcher: (typeof LAUNCHERS)[number];
  slurmArgs?: string;
  wait: boolean;
  dryRun?: boolean;
  k8sImage: string;
  k8sVolumeClaim: string;
  k8sParallelism?: number;
  slurmPoll: number;
  cacheDir?: string;
  out?: string;
  quiet?: boolean;
}

/** Runs a non-local launcher; returns the run folder (or manifests folder) to print, or null when there is none yet. */
export async function launch(config: SweepConfig, f: LauncherFlags, command: string, signal?: AbortSignal): Promise<string | null> {
  if (f.launcher === 'k8s') {
    if (!f.dryRun) throw new Error('--launcher k8s only writes manifests: add --dry-run, then apply them with the run.sh it writes');
    const m = await writeK8sManifests({ config, out: f.out, image: f.k8sImage, volumeClaim: f.k8sVolumeClaim, parallelism: f.k8sParallelism });
    process.stderr.write(`wrote ${m.files.length} files to ${m.dir}; apply them in order with ${m.dir}/run.sh\n`);
    return m.dir;
  }
  const r = await runSlurmSweep({ config, cacheDir: f.cacheDir, out: f.out, quiet: f.quiet, command, slurmArgs: f.slurmArgs, wait: f.wait, dryRun: f.dryRun, pollSeconds: f.slurmPoll, signal });
  if (!r.sweep) return null;
  process.stderr.write(`\nrun folder: ${r.sweep.runDir}\n  report: ${r.sweep.runDir}/report.html\n`);
  return r.sweep.runDir;
}
