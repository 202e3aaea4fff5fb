/**
 * The code version in a point's cache key: a hash of the source files that can change a trained SAE or its
 * metrics — core, the folder of the point's architecture (the one its `source` module lives in: its package's
 * src/), the harness training/evaluation path and the sweep's point runner — so editing TopK's kernels reruns only
 * TopK points (and BatchTopK's, which shares the package), and editing the report code reruns nothing.
 * The language model's code is covered separately, through its fingerprint (`lmCodeVersion`).
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ArchName } from '@saelab/core';
import { getArchitecture } from '../registry.js';
import { CODE_VERSION } from '../sae-folder.js';

const PACKAGES = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The architecture's source folder relative to packages/ (e.g. 'sae-topk/src'). */
const archSources = (arch: ArchName): string => relative(PACKAGES, dirname(fileURLToPath(getArchitecture(arch).source)));

/** Files (relative to packages/) whose contents define results, besides the architecture package. */
const SHARED = [
  'core/src',
  'harness/src/train.ts',
  'harness/src/train-run.ts',
  'harness/src/evaluate.ts',
  'harness/src/data.ts',
  'harness/src/sae-folder.ts',
  'harness/src/sweep/point.ts',
  'harness/src/sweep/calibrate.ts',
  'harness/src/sweep/point-field.ts',
  'harness/src/sweep/baselines.ts',
  'harness/src/sweep/eval-blocks.ts',
  'activations/src/splice.ts',
  'activations/src/splice-field.ts',
];

function tsFiles(path: string): string[] {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return [];
  if (st.isFile()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((f) => tsFiles(join(path, f)))
    .filter((f) => f.endsWith('.ts'));
}

/** sha-256 (12 hex) over the .ts files under `rels` (relative to `root`, default packages/), names and contents. */
export function sourceHash(rels: string[], root = PACKAGES): string {
  const h = createHash('sha256');
  for (const rel of rels) {
    for (const f of tsFiles(join(root, rel))) h.update(f.slice(root.length)).update('\0').update(readFileSync(f)).update('\0');
  }
  return h.digest('hex').slice(0, 12);
}

const memo = new Map<string, string>();
function memoised(key: string, compute: () => string): string {
  let v = memo.get(key);
  if (v === undefined) memo.set(key, (v = compute()));
  return v;
}

/** `0.1.0+<12 hex>`: the package version plus a hash of the source files named above. */
export function codeVersion(arch: ArchName): string {
  return memoised(arch, () => `${CODE_VERSION}+${sourceHash([...SHARED, archSources(arch)])}`);
}

/**
 * The source code behind a language model's forward pass (and, for the default LM, its training), part of the
 * LM's fingerprint: editing the llama2.c forward or a Longhorn kernel re-harvests the activations (and so
 * reruns the points), as editing an SAE reruns that SAE's points. Whole packages, conservatively: the model code,
 * the tokenizers and the splice live there.
 */
export function lmCodeVersion(kind: 'llama2c' | 'longhorn'): string {
  const rels = kind === 'llama2c' ? ['core/src', 'activations/src'] : ['core/src', 'ssm-longhorn/src', 'activations/src'];
  return memoised(`lm:${kind}`, () => sourceHash(rels));
}
