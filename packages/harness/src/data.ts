/**
 * Activation inputs for training and evaluation: `.npy` / safetensors files (via core), with a held-out tail for
 * metrics, and a cheap content fingerprint for provenance and caching.
 */
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { openActivationStore } from '@saelab/activations';
import { type RowSource, openActivationFile } from '@saelab/core';

export interface ActivationInput extends RowSource {
  readonly description: string;
  /** sha256 over size + first and last MiB of the file (or the store's manifest hash). */
  readonly fingerprint: string;
  /** The hook site the rows come from, when the input says (an activation store's manifest). */
  readonly site?: string;
  /** The model the rows come from, when the input says. */
  readonly source?: string;
  close(): Promise<void>;
}

export async function fileFingerprint(path: string): Promise<string> {
  const { size } = await stat(path);
  const fh = await open(path, 'r');
  try {
    const h = createHash('sha256').update(String(size));
    const span = Math.min(size, 1 << 20);
    const head = Buffer.alloc(span);
    await fh.read(head, 0, span, 0);
    h.update(head);
    const tail = Buffer.alloc(span);
    await fh.read(tail, 0, span, size - span);
    h.update(tail);
    return h.digest('hex');
  } finally {
    await fh.close();
  }
}

/** Opens `.npy`, `.safetensors` (optionally `file#tensor`), or an activation-store folder (`saelab harvest`). */
export async function openActivations(spec: string): Promise<ActivationInput> {
  if ((await stat(spec).catch(() => null))?.isDirectory()) {
    const store = openActivationStore(spec);
    const m = store.manifest;
    const fingerprint = createHash('sha256').update(m.shards.map((s) => s.sha256).join(',')).digest('hex');
    return {
      rows: store.rows,
      d: store.d,
      readRows: (s, n) => store.readRows(s, n),
      description: `${spec} [${store.rows} × ${store.d}, ${m.dtype}] from ${m.source} @ ${m.site} (${m.corpus.name}/${m.corpus.split})`,
      fingerprint,
      site: m.site,
      source: m.source,
      close: () => store.close(),
    };
  }
  const file = await openActivationFile(spec);
  const fingerprint = await fileFingerprint(file.path);
  return {
    rows: file.rows,
    d: file.d,
    readRows: (s, n) => file.readRows(s, n),
    description: `${spec} [${file.rows} × ${file.d}, ${file.dtype}]`,
    fingerprint,
    close: () => file.close(),
  };
}

/** Rows [start, start + rows) of a source, as a source. */
export function rowRange(source: RowSource, start: number, rows: number): RowSource {
  if (start < 0 || rows < 0 || start + rows > source.rows) throw new Error(`rowRange: [${start}, ${start + rows}) is outside [0, ${source.rows})`);
  return { rows, d: source.d, readRows: (s, n) => source.readRows(start + s, n) };
}

/** Splits off a held-out tail for evaluation: by default 5% of rows, at most 16,384, at least 1 when possible. */
export function splitHeldOut(source: RowSource, evalRows?: number): { train: RowSource; heldOut: RowSource } {
  const n = evalRows ?? Math.min(16_384, Math.max(source.rows > 1 ? 1 : 0, Math.floor(source.rows * 0.05)));
  if (n >= source.rows) throw new Error(`--eval-rows ${n} leaves no training rows (the input has ${source.rows})`);
  return { train: rowRange(source, 0, source.rows - n), heldOut: rowRange(source, source.rows - n, n) };
}
