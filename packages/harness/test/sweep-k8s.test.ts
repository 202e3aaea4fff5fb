/**
 * `saelab sweep --launcher k8s --dry-run`: the manifests parse as YAML and satisfy the Kubernetes API schema of
 * every field they use (batch/v1 Job, v1 ConfigMap, the pod template; constraints from the API reference:
 * https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/job-v1/), each point has exactly one
 * completion index, every pod mounts the one shared cache claim, and each index's shell command, run by a real
 * `sh`, resolves to its own point id.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { cli, tempDir } from './util.js';

// Names: Job names become pod label values, so a DNS-1123 label (≤ 63); container/volume names too.
const dnsLabel = z.string().max(63).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
const labelValue = z.string().max(63).regex(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/);
const labelKey = z.string().regex(/^([a-z0-9.-]{1,253}\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/);
const labels = z.record(labelKey, labelValue);
const quantity = z.string().regex(/^[0-9.]+(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/);
const count = z.number().int().nonnegative();

const container = z.strictObject({
  name: dnsLabel,
  image: z.string().min(1),
  workingDir: z.string().startsWith('/'),
  command: z.array(z.string()).min(1),
  env: z.array(z.strictObject({ name: z.string().regex(/^[-._a-zA-Z][-._a-zA-Z0-9]*$/), value: z.string() })),
  resources: z.strictObject({ requests: z.record(z.enum(['cpu', 'memory']), quantity), limits: z.record(z.enum(['cpu', 'memory']), quantity) }).optional(),
  volumeMounts: z.array(z.strictObject({ name: dnsLabel, mountPath: z.string().startsWith('/'), readOnly: z.boolean().optional() })),
});
const volume = z.union([
  z.strictObject({ name: dnsLabel, persistentVolumeClaim: z.strictObject({ claimName: z.string().min(1), readOnly: z.boolean().optional() }) }),
  z.strictObject({ name: dnsLabel, configMap: z.strictObject({ name: dnsLabel }) }),
]);
const job = z.strictObject({
  apiVersion: z.literal('batch/v1'),
  kind: z.literal('Job'),
  metadata: z.strictObject({ name: dnsLabel, labels }),
  spec: z
    .strictObject({
      completionMode: z.enum(['NonIndexed', 'Indexed']).optional(),
      completions: count,
      parallelism: count,
      backoffLimit: count.optional(),
      backoffLimitPerIndex: count.optional(),
      maxFailedIndexes: count.optional(),
      template: z.strictObject({
        metadata: z.strictObject({ labels }),
        spec: z.strictObject({ restartPolicy: z.enum(['Never', 'OnFailure']), containers: z.array(container).min(1), volumes: z.array(volume) }),
      }),
    })
    // API validation rules: per-index limits only for Indexed Jobs; maxFailedIndexes needs backoffLimitPerIndex and ≤ completions.
    .refine((s) => s.backoffLimitPerIndex === undefined || s.completionMode === 'Indexed', 'backoffLimitPerIndex needs completionMode Indexed')
    .refine((s) => s.maxFailedIndexes === undefined || (s.backoffLimitPerIndex !== undefined && s.maxFailedIndexes <= s.completions), 'maxFailedIndexes')
    .refine((s) => s.parallelism <= s.completions, 'parallelism ≤ completions'),
});
const configMap = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('ConfigMap'),
  metadata: z.strictObject({ name: dnsLabel, labels }),
  data: z.record(z.string().regex(/^[-._a-zA-Z0-9]+$/), z.string()),
});
type Job = z.infer<typeof job>;

let dir: string;
let cleanup: () => Promise<void>;
let docs: Record<string, unknown[]> = {};
let ids: string[];
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('k8s'));
  const r = await cli('sweep', '--preset', 'smoke', '--launcher', 'k8s', '--dry-run', '--out', join(dir, 'k8s'), '--k8s-image', 'registry.example/saelab:1', '--k8s-parallelism', '4');
  expect(r.code, r.stderr).toBe(0);
  ids = (await cli('sweep', '--preset', 'smoke', '--list-points')).stdout.trim().split('\n');
  for (const f of readdirSync(join(dir, 'k8s')).filter((f) => f.endsWith('.yaml'))) {
    docs[f] = parseAllDocuments(readFileSync(join(dir, 'k8s', f), 'utf8')).map((d) => {
      expect(d.errors).toEqual([]);
      return d.toJS();
    });
  }
});
afterAll(() => cleanup());

describe('sweep --launcher k8s --dry-run', () => {
  it('writes the four stages, each a valid Job (and the ConfigMap), run in order by run.sh', () => {
    expect(Object.keys(docs).sort()).toEqual(['00-prepare.yaml', '10-calibrate.yaml', '20-points.yaml', '30-merge.yaml']);
    const [cm, ...rest] = docs['00-prepare.yaml']!;
    configMap.parse(cm);
    for (const j of [...rest, ...docs['10-calibrate.yaml']!, ...docs['20-points.yaml']!, ...docs['30-merge.yaml']!]) job.parse(j);
    const runSh = readFileSync(join(dir, 'k8s', 'run.sh'), 'utf8');
    expect(runSh.indexOf('00-prepare.yaml')).toBeLessThan(runSh.indexOf('10-calibrate.yaml'));
    expect(runSh.indexOf('10-calibrate.yaml')).toBeLessThan(runSh.indexOf('20-points.yaml'));
    execFileSync('sh', ['-n', join(dir, 'k8s', 'run.sh')]); // parses as POSIX sh
  });

  it('gives each point one completion index and every pod the shared cache volume', () => {
    const points = job.parse(docs['20-points.yaml']![0]);
    expect(points.spec.completionMode).toBe('Indexed');
    expect(points.spec.completions).toBe(ids.length);
    expect(points.spec.parallelism).toBe(4);
    const cm = configMap.parse(docs['00-prepare.yaml']![0]);
    expect(cm.data['points.txt']!.trim().split('\n')).toEqual(ids);
    expect(JSON.parse(cm.data['sweep-config.json']!).name).toBe('smoke');
    const calib = job.parse(docs['10-calibrate.yaml']![0]);
    expect(calib.spec.completions).toBe(3); // relu, gated, jumprelu (TopK needs no calibration)
    const all: Job[] = Object.values(docs).flat().filter((d) => (d as { kind: string }).kind === 'Job').map((d) => job.parse(d));
    for (const j of all) {
      const pod = j.spec.template.spec;
      const cache = pod.volumes.find((v) => 'persistentVolumeClaim' in v)!;
      expect((cache as { persistentVolumeClaim: { claimName: string } }).persistentVolumeClaim.claimName).toBe('saelab-cache');
      expect(pod.containers[0]!.image).toBe('registry.example/saelab:1');
      const names = new Set(pod.volumes.map((v) => v.name));
      for (const m of pod.containers[0]!.volumeMounts) expect(names.has(m.name), m.name).toBe(true);
      const cfg = pod.volumes.find((v) => 'configMap' in v) as { configMap: { name: string } };
      expect(cfg.configMap.name).toBe(cm.metadata.name);
    }
  });

  it("runs each index's command in sh to its own point id", () => {
    const points = job.parse(docs['20-points.yaml']![0]);
    const cm = configMap.parse(docs['00-prepare.yaml']![0]);
    // The ConfigMap as the pod sees it, and a `node` that prints its arguments instead of training.
    const etc = join(dir, 'etc');
    const bin = join(dir, 'bin');
    mkdirSync(etc);
    mkdirSync(bin);
    for (const [k, v] of Object.entries(cm.data)) writeFileSync(join(etc, k), v);
    writeFileSync(join(bin, 'node'), '#!/bin/sh\necho "$@"\n');
    chmodSync(join(bin, 'node'), 0o755);
    const script = points.spec.template.spec.containers[0]!.command[2]!.replaceAll('/etc/saelab', etc);
    for (const [i, id] of ids.entries()) {
      const out = execFileSync('sh', ['-c', script], { env: { PATH: `${bin}:/usr/bin:/bin`, JOB_COMPLETION_INDEX: String(i) }, encoding: 'utf8' });
      expect(out.trim()).toMatch(new RegExp(`sweep-point --config ${etc}/sweep-config.json --cache-dir /cache --quiet --point ${id}$`));
    }
  });
});
