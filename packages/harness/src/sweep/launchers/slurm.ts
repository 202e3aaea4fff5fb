/**
 * `saelab sweep --launcher slurm`: the sweep's stages (stages.ts) on a Slurm cluster.
 *
 * Prepare the data here into the shared cache, submit one `sbatch --array` job for the calibration families (if
 * any) and one `sbatch --array` job over the pending points (`--dependency=afterok` on the first,
 * `--kill-on-invalid-dep=yes` so a failed calibration cancels its dependants instead of leaving them pending
 * forever), poll `squeue` until both have left the queue, and merge from the cache into the normal run folder.
 * The cache is the ground truth: a point is finished when its `result.json` exists, so re-running the same command
 * resubmits exactly the unfinished points, and a re-run while the jobs are still queued waits for them instead
 * of submitting twice (the job ids are kept in `<cache>/launch/<name>-<hash>/state.json`).
 *
 * Needs: the cache folder and this repository on a file system every node sees (the paths are written into the
 * batch scripts as they are here), and `node` at the same path on the nodes (override with $SAELAB_NODE).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeFileAtomic } from '@saelab/core';
import type { SweepConfig } from '../config.js';
import { expandGrid } from '../config.js';
import { prepareSweepData } from '../dataset.js';
import { REPO_ROOT, type SweepRunResult, runSweep } from '../run.js';
import { type StagePlan, launchKey, pendingPoints, planStages, resolvedCacheDir, shQuote, shellWords } from './stages.js';

const run = promisify(execFile);
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res) => {
    const t = setTimeout(res, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), res()), { once: true });
  });
const BIN = join(REPO_ROOT, 'packages/harness/bin/saelab.js');

export interface SlurmSweepOptions {
  config: SweepConfig;
  cacheDir?: string;
  out?: string;
  quiet?: boolean;
  command?: string;
  /** Extra `sbatch` options for both jobs, e.g. `--partition=cpu --time=02:00:00 --cpus-per-task=4`. */
  slurmArgs?: string;
  /** false: submit and return (re-run the same command to wait and merge). */
  wait?: boolean;
  /** Write the batch scripts and print the sbatch commands without submitting. */
  dryRun?: boolean;
  /** Seconds between squeue polls (default 10). */
  pollSeconds?: number;
  /** Aborting stops waiting (the jobs keep running; re-run the same command to attach). */
  signal?: AbortSignal;
  log?: (s: string) => void;
}

interface LaunchState {
  jobs: { stage: 'calibration' | 'points'; id: string; tasks: string[][] }[];
  submittedAt: string;
}

export interface SlurmSweepResult {
  /** The merged sweep; null when not waited for (--no-wait, --dry-run). */
  sweep: SweepRunResult | null;
  /** Job ids submitted by this call (empty when it attached to running jobs or everything was cached). */
  submitted: string[];
  launchDir: string;
}

export async function runSlurmSweep(o: SlurmSweepOptions): Promise<SlurmSweepResult> {
  const c = o.config;
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const cacheDir = resolvedCacheDir(o.cacheDir);
  const launchDir = join(cacheDir, 'launch', launchKey(c));
  await mkdir(join(launchDir, 'logs'), { recursive: true });
  const configPath = join(launchDir, 'sweep-config.json');
  await writeFileAtomic(configPath, JSON.stringify(c, null, 2) + '\n');
  const statePath = join(launchDir, 'state.json');
  const merge = async () => ({ sweep: await runSweep({ config: c, cacheDir, out: o.out, quiet: o.quiet, command: o.command, log }), submitted: [] as string[], launchDir });

  // 1. Prepare once, here: LM build + harvest into the shared cache.
  const data = await prepareSweepData(c, cacheDir, log, o.quiet);
  let state: LaunchState | null = existsSync(statePath) ? (JSON.parse(await readFile(statePath, 'utf8')) as LaunchState) : null;
  const submitted: string[] = [];
  try {
    const active = state ? await activeJobs(state.jobs.map((j) => j.id)) : new Set<string>();
    if (state && active.size > 0) {
      log(`slurm: attaching to the sweep's jobs still in the queue (${[...active].join(', ')}); nothing resubmitted`);
    } else {
      const pending = await pendingPoints(c, data, cacheDir);
      if (pending.length === 0) {
        log(`slurm: every point is in the cache; ${o.dryRun ? 'nothing to submit' : 'merging'}`);
        return o.dryRun ? { sweep: null, submitted: [], launchDir } : await merge();
      }
      const plan = planStages(expandGrid(c), pending, c.calibration.method);
      state = await submit(plan, { configPath, cacheDir, launchDir, name: c.name, slurmArgs: shellWords(o.slurmArgs ?? ''), dryRun: o.dryRun ?? false, log });
      if (o.dryRun) return { sweep: null, submitted: [], launchDir };
      await writeFileAtomic(statePath, JSON.stringify(state, null, 2) + '\n');
      submitted.push(...state.jobs.map((j) => j.id));
      log(`slurm: submitted ${plan.calibration.length ? `calibration job ${state.jobs[0]!.id} (${plan.calibration.length} families) and ` : ''}point job ${state.jobs.at(-1)!.id} (${plan.points.length} points)`);
    }
    if (o.wait === false) {
      log(`slurm: not waiting; run the same command again to wait for the jobs and merge (logs: ${join(launchDir, 'logs')})`);
      return { sweep: null, submitted, launchDir };
    }

    // 2. Wait, with progress from the cache (finished points) and the queue.
    const grid = expandGrid(c);
    const t0 = performance.now();
    let done0: number | null = null;
    let last = { done: -1, at: -Infinity };
    for (;;) {
      const left = await activeJobs(state!.jobs.map((j) => j.id));
      const done = grid.length - (await pendingPoints(c, data, cacheDir)).length;
      done0 ??= done;
      const s = (performance.now() - t0) / 1000;
      // A line when a point finishes, the queue empties, or every 5 minutes; ETA from the points finished while waiting.
      if (done !== last.done || left.size === 0 || s - last.at >= 300) {
        const rate = (done - done0) / Math.max(s, 1e-9);
        const eta = rate > 0 ? ` | ETA ${Math.round((grid.length - done) / rate)} s` : '';
        if (!o.quiet || left.size === 0) log(`slurm: ${done}/${grid.length} points finished | ${s.toFixed(0)} s waited${eta} | ${left.size ? `jobs ${[...left].join(', ')} in the queue` : 'queue empty'}`);
        last = { done, at: s };
      }
      if (left.size === 0) break;
      if (o.signal?.aborted) {
        log(`slurm: stopped waiting; jobs ${[...left].join(', ')} keep running — run the same command again to attach and merge`);
        return { sweep: null, submitted, launchDir };
      }
      await sleep((o.pollSeconds ?? 10) * 1000, o.signal);
    }

    // 3. Failures, by point id (the cache says what is missing; Slurm says how each task ended).
    const missing = await pendingPoints(c, data, cacheDir);
    if (missing.length > 0) {
      const states = await taskStates(state!.jobs.map((j) => j.id));
      const spec = new Map(grid.map((p) => [p.id, p]));
      const family = (id: string) => `${spec.get(id)!.arch}-x${spec.get(id)!.expansion}`;
      const taskOf = new Map<string, string>();
      for (const j of state!.jobs) {
        j.tasks.forEach((ids, i) => {
          const how = `${j.stage} task ${j.id}_${i} ${states.get(`${j.id}_${i}`) ?? '(state unknown)'}, log ${join(launchDir, 'logs', `${j.stage}-${j.id}_${i}.out`)}`;
          for (const id of ids) taskOf.set(j.stage === 'points' ? id : `calibration:${family(id)}`, how);
        });
      }
      const lines = missing.map((p) => {
        const cal = taskOf.get(`calibration:${family(p.id)}`);
        return `  ${p.id}: ${taskOf.get(p.id) ?? 'not submitted'}${cal && !/COMPLETED/.test(cal) ? `; its calibration: ${cal}` : ''}`;
      });
      throw new Error(`${missing.length} of ${grid.length} points did not finish on Slurm:\n${lines.join('\n')}\nre-run the same command to resubmit only these`);
    }
  } finally {
    await data.close();
  }
  // 4. Merge: every point is a cache hit.
  const merged = await merge();
  return { ...merged, submitted };
}

interface SubmitContext {
  configPath: string;
  cacheDir: string;
  launchDir: string;
  name: string;
  slurmArgs: string[];
  dryRun: boolean;
  log: (s: string) => void;
}

async function submit(plan: StagePlan, x: SubmitContext): Promise<LaunchState> {
  const stamp = Date.now().toString(36);
  const jobs: LaunchState['jobs'] = [];
  const stages: { stage: 'calibration' | 'points'; tasks: string[][]; extra: string[] }[] = [];
  if (plan.calibration.length > 0) stages.push({ stage: 'calibration', tasks: plan.calibration, extra: ['--calibrate-only'] });
  stages.push({ stage: 'points', tasks: plan.points.map((id) => [id]), extra: [] });
  for (const s of stages) {
    const tasksFile = join(x.launchDir, `${s.stage}-${stamp}.tasks`);
    const script = join(x.launchDir, `${s.stage}-${stamp}.sbatch`);
    await writeFileAtomic(tasksFile, s.tasks.map((t) => t.join(' ')).join('\n') + '\n');
    await writeFileAtomic(script, batchScript(s.stage, tasksFile, s.extra, x));
    const dependency = jobs.length > 0 ? [`--dependency=afterok:${jobs.at(-1)!.id}`, '--kill-on-invalid-dep=yes'] : [];
    const args = ['--parsable', `--job-name=saelab-${x.name}-${s.stage}`, `--array=0-${s.tasks.length - 1}`, `--output=${join(x.launchDir, 'logs', `${s.stage}-%A_%a.out`)}`, ...dependency, ...x.slurmArgs, script];
    if (x.dryRun) {
      x.log(`sbatch ${args.map(shQuote).join(' ')}`);
      jobs.push({ stage: s.stage, id: `<${s.stage}-job>`, tasks: s.tasks });
      continue;
    }
    const { stdout } = await sbatch(args);
    const id = stdout.trim().split(';')[0]!;
    if (!/^\d+$/.test(id)) throw new Error(`sbatch printed '${stdout.trim()}', not a job id`);
    jobs.push({ stage: s.stage, id, tasks: s.tasks });
  }
  return { jobs, submittedAt: new Date().toISOString() };
}

/** One array task: its line of the tasks file, each id through `saelab sweep-point`, in order, stopping at a failure. */
function batchScript(stage: string, tasksFile: string, extra: string[], x: SubmitContext): string {
  const node = process.env.SAELAB_NODE ?? process.execPath;
  const cmd = [node, BIN, 'sweep-point', '--config', x.configPath, '--cache-dir', x.cacheDir, '--quiet', ...extra].map(shQuote).join(' ');
  return `#!/bin/bash
# saelab sweep '${x.name}', ${stage} stage: array task i runs line i+1 of the tasks file (written by saelab sweep --launcher slurm).
set -euo pipefail
cd ${shQuote(REPO_ROOT)}
ids=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" ${shQuote(tasksFile)})
for id in $ids; do
  echo "[$(date -u +%FT%TZ)] ${stage} $id on $(hostname)"
  ${cmd} --point "$id"
done
`;
}

async function sbatch(args: string[]): Promise<{ stdout: string }> {
  try {
    return await run('sbatch', args);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new Error('--launcher slurm: sbatch not found on PATH (run this on a Slurm login node)');
    throw new Error(`sbatch failed: ${(err.stderr ?? err.message).trim()}`);
  }
}

/** The jobs among `ids` that still have tasks pending or running (squeue lists only those by default). */
async function activeJobs(ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  try {
    const { stdout } = await run('squeue', ['-h', '-r', '-j', ids.join(','), '-o', '%F']);
    return new Set(stdout.split('\n').map((s) => s.trim()).filter((s) => ids.includes(s)));
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    // Jobs the controller has already purged are "invalid": they are no longer in the queue.
    if (/Invalid job id/i.test(err.stderr ?? '')) return new Set();
    if (err.code === 'ENOENT') throw new Error('--launcher slurm: squeue not found on PATH');
    throw new Error(`squeue failed: ${(err.stderr ?? err.message).trim()}`);
  }
}

/** How each array task ended, `<job>_<index>` → state (sacct where accounting is on, else squeue's memory of it). */
async function taskStates(ids: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const add = (rows: string) => {
    for (const line of rows.split('\n')) {
      const [id, st, code] = line.trim().split('|');
      if (id && st && /^\d+_\d+$/.test(id)) out.set(id, code ? `${st} (exit ${code})` : st);
    }
  };
  try {
    add((await run('sacct', ['-n', '-P', '-X', '-j', ids.join(','), '-o', 'JobID,State,ExitCode'])).stdout);
  } catch {
    try {
      add((await run('squeue', ['-h', '-r', '-j', ids.join(','), '--states=all', '-o', '%i|%T'])).stdout);
    } catch {
      // No state: the report still names the point and its log.
    }
  }
  return out;
}
