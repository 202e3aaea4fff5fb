/**
 * The code version in a point's cache key: a hash of the source files that can change a trained SAE or its
 * metrics — core, the point's architecture package, the harness training/evaluation path and the sweep's point
 * runner — so editing TopK's kernels reruns only TopK points, and editing the report code reruns nothing.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ArchName } from '@saelab/core';
import { CODE_VERSION } from '../sae-folder.js';

const PACKAGES = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

const ARCH_PACKAGE: Record<ArchName, string> = { relu: 'sae-relu', gated: 'sae-gated', topk: 'sae-topk', jumprelu: 'sae-jumprelu' };

/** Files (relative to packages/) whose contents define results, besides the architecture package. */
const SHARED = [
  'core/src',
  'harness/src/train.ts',
  'harness/src/evaluate.ts',
  'harness/src/data.ts',
  'harness/src/sae-folder.ts',
  'harness/src/sweep/point.ts',
  'harness/src/sweep/calibrate.ts',
  'activations/src/splice.ts',
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

const memo = new Map<ArchName, string>();

/** `0.1.0+<12 hex>`: the package version plus a hash of the source files named above. */
export function codeVersion(arch: ArchName): string {
  let v = memo.get(arch);
  if (!v) {
    const h = createHash('sha256');
    for (const rel of [...SHARED, `${ARCH_PACKAGE[arch]}/src`]) {
      for (const f of tsFiles(join(PACKAGES, rel))) h.update(f.slice(PACKAGES.length)).update('\0').update(readFileSync(f)).update('\0');
    }
    v = `${CODE_VERSION}+${h.digest('hex').slice(0, 12)}`;
    memo.set(arch, v);
  }
  return v;
}
