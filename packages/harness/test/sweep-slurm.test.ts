/**
 * `saelab sweep --launcher slurm` against a real Slurm: a single-node cluster on localhost (munged + slurmctld +
 * slurmd, config written by tools/slurm-local.sh into a temp folder), the smoke preset through the launcher, and its
 * frontier.json compared point for point with a local run of the same preset. Then the cache as the ground truth:
 * a re-run submits nothing; with two points removed and every task failing, the failure names both points; the
 * next re-run (--no-wait) resubmits exactly those two, the one after attaches to them, and the frontier is the same.
 *
 * Needs Debian's slurm-wlm + munge and root (`.ci/run` installs them and sets SAELAB_REQUIRE_SLURM=1, which turns
 * the skip into a failure). Elsewhere it skips with the reason.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from './util.js';

const run = promisify(execFile);
const SCRIPT = resolve(BIN, '../../../../tools/slurm-local.sh');
const tmp = mkdtempSync(join(tmpdir(), 'saelab-slurm-'));
const cluster = join(tmp, 'cluster');
const required = process.env.SAELAB_REQUIRE_SLURM === '1';
let env: NodeJS.ProcessEnv = process.env;
let unavailable: string | null = null;

beforeAll(async () => {
  try {
    await run('bash', [SCRIPT, 'start', cluster], { timeout: 60_000 });
    env = { ...process.env, SLURM_CONF: join(cluster, 'slurm.conf') };
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    unavailable = (err.stderr || err.message).trim().split('\n').at(-1)!;
  }
}, 90_000);

afterAll(async () => {
  await run('bash', [SCRIPT, 'stop', cluster]).catch(() => undefined);
  rmSync(tmp, { recursive: true, force: true });
});

const saelab = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
  run(process.execPath, [BIN, ...args], { env: { ...env, ...extraEnv }, maxBuffer: 64 << 20, timeout: 1_500_000 }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code?: number; stdout: string; stderr: string }) => ({ code: e.code ?? 1, stdout: e.stdout, stderr: e.stderr }),
  );

interface Point {
  id: string;
  hash: string;
  train: Record<string, unknown>;
  provenance: Record<string, unknown>;
  [k: string]: unknown;
}
const frontier = (dir: string) => JSON.parse(readFileSync(join(dir, 'frontier.json'), 'utf8')) as { points: Point[]; summaries: unknown };
/** What a point computed: everything but wall times and where/when it ran. */
const outcome = ({ train, provenance, ...rest }: Point) => ({ ...rest, steps: train.steps, tokens: train.tokens, key: provenance.key, data: provenance.dataFingerprint });

const cacheLocal = join(tmp, 'cache-local');
const cacheSlurm = join(tmp, 'cache-slurm');
const smoke = (cache: string, out: string, ...more: string[]) => ['sweep', '--preset', 'smoke', '--cache-dir', cache, '--out', out, '--quiet', ...more];
const slurmFlags = ['--launcher', 'slurm', '--slurm-poll', '1'];
const launchState = () => {
  const dir = join(cacheSlurm, 'launch');
  const [key] = readdirSync(dir);
  return JSON.parse(readFileSync(join(dir, key!, 'state.json'), 'utf8')) as { jobs: { stage: string; id: string; tasks: string[][] }[] };
};

describe('sweep --launcher slurm on a single-node Slurm cluster', () => {
  let local: ReturnType<typeof frontier>;

  const skipIfNoSlurm = (ctx: { skip: () => void }) => {
    if (!unavailable) return;
    if (required) throw new Error(`SAELAB_REQUIRE_SLURM=1 but Slurm did not start: ${unavailable}`);
    console.warn(`skipping the Slurm launcher test: ${unavailable}`);
    ctx.skip();
  };

  it('reproduces the local smoke sweep point for point', async (ctx) => {
    skipIfNoSlurm(ctx);
    const l = await saelab(smoke(cacheLocal, join(tmp, 'local')));
    expect(l.code, l.stderr).toBe(0);
    local = frontier(join(tmp, 'local'));
    // Share the trained LM only (as a cluster would share lm/): the launcher still harvests the data itself.
    cpSync(join(cacheLocal, 'lm'), join(cacheSlurm, 'lm'), { recursive: true });

    const s = await saelab(smoke(cacheSlurm, join(tmp, 'slurm'), ...slurmFlags));
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/submitted calibration job \d+ \(3 families\) and point job \d+ \(12 points\)/);
    const st = launchState();
    expect(st.jobs.map((j) => j.stage)).toEqual(['calibration', 'points']);
    // One task per calibration family, its targets in grid order; one task per point.
    expect(st.jobs[0]!.tasks).toEqual([
      ['relu-l0_4-x4-s0', 'relu-l0_8-x4-s0', 'relu-l0_16-x4-s0'],
      ['gated-l0_4-x4-s0', 'gated-l0_8-x4-s0', 'gated-l0_16-x4-s0'],
      ['jumprelu-l0_4-x4-s0', 'jumprelu-l0_8-x4-s0', 'jumprelu-l0_16-x4-s0'],
    ]);
    expect(st.jobs[1]!.tasks.flat().sort()).toEqual(local.points.map((p) => p.id).sort());
    // Each task really ran under Slurm (its log was written by the batch script on the node).
    const logs = readdirSync(join(cacheSlurm, 'launch', readdirSync(join(cacheSlurm, 'launch'))[0]!, 'logs'));
    expect(logs.filter((f) => f.startsWith('points-')).length).toBe(12);

    const slurm = frontier(join(tmp, 'slurm'));
    expect(slurm.points.map((p) => p.id)).toEqual(local.points.map((p) => p.id));
    for (const [i, p] of slurm.points.entries()) expect(outcome(p), p.id).toEqual(outcome(local.points[i]!));
    expect(slurm.summaries).toEqual(local.summaries);
  }, 1_800_000);

  it('re-runs from the cache: nothing submitted when done; failures named by point id; only they are resubmitted', async (ctx) => {
    skipIfNoSlurm(ctx);
    expect(local, 'needs the first test').toBeDefined();
    const again = await saelab(smoke(cacheSlurm, join(tmp, 'slurm2'), ...slurmFlags));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/every point is in the cache/);

    // Remove two finished points; make every task fail (the batch scripts run SAELAB_NODE instead of node).
    const gone = ['relu-l0_16-x4-s0', 'topk-l0_8-x4-s0'];
    const pointsDir = join(cacheSlurm, 'points');
    for (const d of readdirSync(pointsDir)) if (gone.some((id) => d.startsWith(`${id}-`))) rmSync(join(pointsDir, d), { recursive: true });
    const failed = await saelab(smoke(cacheSlurm, join(tmp, 'slurm3'), ...slurmFlags), { SAELAB_NODE: '/bin/false' });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/2 of 12 points did not finish on Slurm/);
    for (const id of gone) expect(failed.stderr).toContain(`  ${id}: `);
    expect(existsSync(join(tmp, 'slurm3', 'frontier.json'))).toBe(false);

    // The same command again (--no-wait: submit and return): exactly the two points, and the one calibration
    // family involved (its calibrations are cache hits).
    const submitted = await saelab(smoke(cacheSlurm, join(tmp, 'slurm4'), ...slurmFlags, '--no-wait'));
    expect(submitted.code, submitted.stderr).toBe(0);
    expect(submitted.stderr).toMatch(/not waiting; run the same command again/);
    const st = launchState();
    expect(st.jobs.find((j) => j.stage === 'points')!.tasks).toEqual(gone.map((id) => [id]));
    expect(st.jobs.find((j) => j.stage === 'calibration')!.tasks).toEqual([['relu-l0_4-x4-s0', 'relu-l0_8-x4-s0', 'relu-l0_16-x4-s0']]);
    // And once more: it attaches to those jobs (or finds them done) instead of submitting again, then merges.
    const fixed = await saelab(smoke(cacheSlurm, join(tmp, 'slurm4'), ...slurmFlags));
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stderr).toMatch(/attaching to the sweep's jobs still in the queue|every point is in the cache/);
    expect(launchState().jobs.map((j) => j.id)).toEqual(st.jobs.map((j) => j.id));
    const re = frontier(join(tmp, 'slurm4'));
    for (const [i, p] of re.points.entries()) expect(outcome(p), p.id).toEqual(outcome(local.points[i]!));
  }, 1_800_000);
});
