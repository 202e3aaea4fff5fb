/**
 * `saelab sweep --launcher k8s --dry-run`: the sweep's stages (stages.ts) as Kubernetes Jobs, written as YAML for
 * `kubectl apply` (nothing is submitted: the cluster, image and volume are the user's).
 *
 * One multi-document file per stage, applied in order by the `run.sh` written beside them:
 *   00-prepare.yaml    ConfigMap (sweep-config.json + the task lists) and a Job: `saelab sweep --prepare-only`
 *   10-calibrate.yaml  Indexed Job, one completion index per calibration family (absent when none is needed)
 *   20-points.yaml     Indexed Job, one completion index per point: `saelab sweep-point --point <id of index>`
 *   30-merge.yaml      Job: `saelab sweep` with the same config (every point a cache hit) into /cache/runs/<name>/
 * Every pod mounts the same PersistentVolumeClaim (ReadWriteMany, e.g. NFS/CephFS) at /cache as the saelab cache:
 * that volume is the hand-off between stages, as the shared folder is on Slurm. An Indexed Job gives each pod its
 * index in $JOB_COMPLETION_INDEX (batch/v1, Kubernetes ≥ 1.24); `backoffLimitPerIndex` (≥ 1.29) retries a failed
 * index alone. Re-applying after a failure recomputes nothing finished: each task is a cache hit when done.
 */
import { chmod, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { writeFileAtomic } from '@saelab/core';
import type { SweepConfig } from '../config.js';
import { expandGrid } from '../config.js';
import { REPO_ROOT } from '../run.js';
import { planStages } from './stages.js';

export interface K8sOptions {
  config: SweepConfig;
  /** Folder for the manifests (default runs/sweep-<name>-k8s/). */
  out?: string;
  /** Container image with this repository at `workdir` and `npm ci` done (see docs/sweep.md for a Dockerfile). */
  image?: string;
  /** Existing ReadWriteMany PersistentVolumeClaim for the cache. */
  volumeClaim?: string;
  /** Pods of one Indexed Job running at once (default: all). */
  parallelism?: number;
  /** Repository folder inside the image. */
  workdir?: string;
  /** Per-pod resources, e.g. { cpu: '4', memory: '8Gi' }. */
  resources?: { cpu?: string; memory?: string };
}

export interface K8sManifests {
  dir: string;
  files: string[];
}

const CACHE = '/cache';
const CONFIG_DIR = '/etc/saelab';

/** A DNS-1123 label from the sweep's name (Job names: lowercase alphanumerics and '-', ≤ 63 characters). */
export function k8sName(s: string): string {
  const n = s.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  return (n || 'sweep').slice(0, 40).replace(/-+$/, '');
}

export async function writeK8sManifests(o: K8sOptions): Promise<K8sManifests> {
  const c = o.config;
  const name = `saelab-${k8sName(c.name)}`;
  const dir = resolve(o.out ?? join(REPO_ROOT, 'runs', `sweep-${c.name}-k8s`));
  await mkdir(dir, { recursive: true });
  const grid = expandGrid(c);
  // Everything is listed: a finished task is a cache hit inside its pod, and this host may not see the volume.
  const plan = planStages(grid, grid, c.calibration.method);
  const image = o.image ?? 'saelab:latest';
  const claim = o.volumeClaim ?? 'saelab-cache';
  const workdir = o.workdir ?? '/app';
  const labels = { 'app.kubernetes.io/name': 'saelab', 'saelab/sweep': name };
  const saelab = `node ${workdir}/packages/harness/bin/saelab.js`;
  const pointCmd = (extra: string, file: string) =>
    `set -eu; for id in $(sed -n "$((JOB_COMPLETION_INDEX + 1))p" ${CONFIG_DIR}/${file}); do ${saelab} sweep-point --config ${CONFIG_DIR}/sweep-config.json --cache-dir ${CACHE} --quiet${extra} --point "$id"; done`;

  const podSpec = (script: string) => ({
    restartPolicy: 'Never',
    containers: [
      {
        name: 'saelab',
        image,
        workingDir: workdir,
        command: ['/bin/sh', '-c', script],
        env: [
          { name: 'SAELAB_CACHE_DIR', value: CACHE },
          { name: 'NX_NO_CLOUD', value: 'true' },
        ],
        ...(o.resources ? { resources: { requests: o.resources, limits: o.resources } } : {}),
        volumeMounts: [
          { name: 'cache', mountPath: CACHE },
          { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
        ],
      },
    ],
    volumes: [
      { name: 'cache', persistentVolumeClaim: { claimName: claim } },
      { name: 'config', configMap: { name: `${name}-config` } },
    ],
  });
  const job = (stage: string, script: string, indexed?: number) => ({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: `${name}-${stage}`, labels: { ...labels, 'saelab/stage': stage } },
    spec: {
      ...(indexed !== undefined
        ? { completionMode: 'Indexed', completions: indexed, parallelism: Math.min(indexed, o.parallelism ?? indexed), backoffLimitPerIndex: 1, maxFailedIndexes: indexed }
        : { completions: 1, parallelism: 1, backoffLimit: 1 }),
      template: { metadata: { labels: { ...labels, 'saelab/stage': stage } }, spec: podSpec(script) },
    },
  });

  const configMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: `${name}-config`, labels },
    data: {
      'sweep-config.json': JSON.stringify(c, null, 2) + '\n',
      'points.txt': plan.points.join('\n') + '\n',
      'calibration.txt': plan.calibration.map((t) => t.join(' ')).join('\n') + '\n',
    },
  };
  const docs: [string, unknown[]][] = [
    ['00-prepare.yaml', [configMap, job('prepare', `set -eu; ${saelab} sweep --config ${CONFIG_DIR}/sweep-config.json --cache-dir ${CACHE} --out ${CACHE}/runs/${name} --prepare-only --quiet`)]],
  ];
  if (plan.calibration.length > 0) docs.push(['10-calibrate.yaml', [job('calibrate', pointCmd(' --calibrate-only', 'calibration.txt'), plan.calibration.length)]]);
  docs.push(['20-points.yaml', [job('points', pointCmd('', 'points.txt'), plan.points.length)]]);
  docs.push(['30-merge.yaml', [job('merge', `set -eu; ${saelab} sweep --config ${CONFIG_DIR}/sweep-config.json --cache-dir ${CACHE} --out ${CACHE}/runs/${name} --quiet`)]]);

  const files: string[] = [];
  for (const [file, objs] of docs) {
    const header = `# saelab sweep '${c.name}': written by \`saelab sweep --launcher k8s --dry-run\`; apply with run.sh (stages in order)\n`;
    await writeFileAtomic(join(dir, file), header + objs.map((x) => stringify(x, { lineWidth: 0 })).join('---\n'));
    files.push(join(dir, file));
  }
  const stages = docs.map(([file]) => file);
  const script = `#!/bin/sh
# Runs the sweep's stages in order on the current kubectl context: each Job must complete before the next starts.
# Needs the PersistentVolumeClaim '${claim}' (ReadWriteMany) and the image '${image}'. The run folder ends up on
# the volume at ${CACHE}/runs/${name}/. Re-running after a failure recomputes nothing finished (all cached).
set -eu
cd "$(dirname "$0")"
for f in ${stages.join(' ')}; do
  job=${name}-$(echo "$f" | sed -e 's/^[0-9]*-//' -e 's/[.]yaml$//')
  kubectl delete job "$job" --ignore-not-found
  kubectl apply -f "$f"
  until state=$(kubectl get job "$job" -o jsonpath='{.status.conditions[?(@.status=="True")].type}') && echo "$state" | grep -qE 'Complete|Failed'; do sleep 10; done
  if echo "$state" | grep -q Failed; then echo "$job failed: kubectl logs -l job-name=$job; fix and re-run $0" >&2; exit 1; fi
done
`;
  await writeFileAtomic(join(dir, 'run.sh'), script);
  await chmod(join(dir, 'run.sh'), 0o755);
  files.push(join(dir, 'run.sh'));
  return { dir, files };
}
