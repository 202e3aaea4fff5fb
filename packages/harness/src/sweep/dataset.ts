/**
 * The data a sweep trains and evaluates on, prepared once and cached by content:
 *  - with an LM: training activations harvested from the corpora's train split (`train.npy`), and held-out
 *    activations from validation-split windows (`eval.npy`) together with those windows' tokens, so ΔLM loss is
 *    measured on exactly the tokens whose activations give L0 / MSE / FVU;
 *  - with `--activations`: the file or activation store as given, its last rows held out (no ΔLM loss).
 * Every point sees the same rows in the same order; the fingerprint (hash of the rows' files and the LM) is part
 * of every point's cache key.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { MANIFEST_FILE, openActivationStore, readManifest } from '@saelab/activations';
import { NpyRowWriter, type RowSource, writeFileAtomic } from '@saelab/core';
import { type ActivationInput, fileFingerprint, openActivations, rowRange } from '../data.js';
import { hashOf } from '../hash.js';
import type { SweepConfig } from './config.js';
import { type OpenedLm, middleResidSite, openSweepLm } from './lm.js';
import { encodeStream, shuffledDocuments } from './tokens.js';

const DATA_VERSION = 1;
/** Version of harvested sweep data. 2: BOS rows dropped at every position (llama2.c separators), not only at window starts. */
const HARVEST_VERSION = 2;

export interface EvalWindows {
  /** [windows, seqLen] row-major. */
  tokens: Int32Array;
  windows: number;
  seqLen: number;
}

export interface SweepData {
  site: string;
  d: number;
  /** Training rows followed by held-out rows (trainSae holds out the last `heldOutRows`). */
  combined: ActivationInput;
  trainRows: number;
  heldOutRows: number;
  heldOut: RowSource;
  fingerprint: string;
  description: string;
  lm: OpenedLm | null;
  evalWindows: EvalWindows | null;
  provenance: Record<string, unknown>;
  close(): Promise<void>;
}

/** Rows of `a` followed by rows of `b`. */
export function concatRows(a: RowSource, b: RowSource): RowSource {
  if (a.d !== b.d) throw new Error(`concatRows: d ${a.d} ≠ ${b.d}`);
  return {
    rows: a.rows + b.rows,
    d: a.d,
    async readRows(start, count) {
      if (start + count <= a.rows) return a.readRows(start, count);
      if (start >= a.rows) return b.readRows(start - a.rows, count);
      const out = new Float32Array(count * a.d);
      const na = a.rows - start;
      out.set(await a.readRows(start, na), 0);
      out.set(await b.readRows(0, count - na), na * a.d);
      return out;
    },
  };
}

/** `quiet` hides the LM-training and harvest progress bars (log lines still go to `log`). */
export async function prepareSweepData(c: SweepConfig, cacheDir: string, log: (s: string) => void, quiet = false): Promise<SweepData> {
  return c.activations ? openGivenActivations(c, c.activations) : harvestFromLm(c, cacheDir, log, quiet);
}

/** `--activations DIR|FILE`: the last min(evalTokens, 20%) rows are held out. */
async function openGivenActivations(c: SweepConfig, spec: string): Promise<SweepData> {
  let all: ActivationInput;
  let site = c.site ?? 'unknown';
  if (existsSync(join(spec, MANIFEST_FILE))) {
    const store = openActivationStore(spec);
    const m = readManifest(spec);
    site = c.site ?? m.site;
    all = {
      rows: store.rows,
      d: store.d,
      readRows: (s, n) => store.readRows(s, n),
      description: `activation store ${spec} (${m.source} @ ${m.site}, ${m.rows} × ${m.d})`,
      fingerprint: hashOf(m.shards.map((s) => s.sha256)),
      close: async () => undefined,
    };
  } else {
    all = await openActivations(spec);
  }
  const heldOutRows = Math.min(c.data.evalTokens, Math.floor(all.rows * 0.2));
  if (heldOutRows < 1 || all.rows - heldOutRows < 1) throw new Error(`${spec}: ${all.rows} rows are too few to hold out evaluation rows`);
  return {
    site,
    d: all.d,
    combined: all,
    trainRows: all.rows - heldOutRows,
    heldOutRows,
    heldOut: rowRange(all, all.rows - heldOutRows, heldOutRows),
    fingerprint: hashOf({ v: DATA_VERSION, rows: all.fingerprint, heldOutRows }),
    description: all.description,
    lm: null,
    evalWindows: null,
    provenance: { activations: spec },
    close: () => all.close(),
  };
}

async function harvestFromLm(c: SweepConfig, cacheDir: string, log: (s: string) => void, quiet: boolean): Promise<SweepData> {
  const lm = await openSweepLm(c, cacheDir, log, quiet);
  const site = c.site ?? middleResidSite(lm.lm.info.nLayers);
  if (!lm.lm.sites().includes(site)) throw new Error(`site '${site}' is not one of the model's sites (${lm.lm.sites().join(', ')})`);
  const d = lm.lm.siteDim(site);
  const key = { v: HARVEST_VERSION, lm: lm.fingerprint, site, data: c.data };
  const dir = join(cacheDir, 'data', hashOf(key));
  if (!existsSync(join(dir, 'meta.json'))) {
    await mkdir(dir, { recursive: true });
    await harvestInto(dir, c, lm, site, d, log, quiet);
  }
  const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as { fingerprint: string; evalWindows: number; seqLen: number; rows: { train: number; eval: number } };
  const train = await openActivations(join(dir, 'train.npy'));
  const ev = await openActivations(join(dir, 'eval.npy'));
  const tokens = Int32Array.from(JSON.parse(await readFile(join(dir, 'eval-tokens.json'), 'utf8')) as number[]);
  const combinedRows = concatRows(train, ev);
  const description = `${lm.description} @ ${site}; ${c.data.corpus} train ${train.rows} rows, validation ${ev.rows} rows`;
  return {
    site,
    d,
    combined: { ...combinedRows, readRows: combinedRows.readRows, description, fingerprint: meta.fingerprint, close: async () => undefined },
    trainRows: train.rows,
    heldOutRows: ev.rows,
    heldOut: ev,
    fingerprint: meta.fingerprint,
    description,
    lm,
    evalWindows: { tokens, windows: meta.evalWindows, seqLen: meta.seqLen },
    provenance: { model: lm.description, modelFingerprint: lm.fingerprint, site, dataDir: dir, ...lm.provenance },
    close: async () => {
      await train.close();
      await ev.close();
    },
  };
}

/**
 * Rows a harvest of `windows` windows of `stream` yields: one per token, except BOS tokens (the first position
 * of every window, and document separators where the separator is BOS, as for llama2.c) — they are special tokens
 * (docs/specs/metrics-and-sweeps.md), and splicing leaves them unedited too.
 */
function harvestRows(stream: Int32Array, windows: number, body: number, bos: number | null): number {
  let n = windows * body;
  if (bos !== null) for (let i = 0; i < windows * body; i++) if (stream[i] === bos) n--;
  return n;
}

/** Runs the LM over windows of `stream` and hands the site's rows (BOS positions dropped) to `sink`, in order. */
async function harvestWindows(
  lm: OpenedLm,
  site: string,
  stream: Int32Array,
  T: number,
  windows: number,
  batch: number,
  sink: (rows: Float32Array) => Promise<void>,
  tick: (windowsDone: number) => void,
): Promise<Int32Array> {
  const bos = lm.lm.info.bos;
  const body = bos === null ? T : T - 1;
  const d = lm.lm.siteDim(site);
  const all = new Int32Array(windows * T);
  for (let w0 = 0; w0 < windows; w0 += batch) {
    const B = Math.min(batch, windows - w0);
    const ids = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const s = (w0 + b) * body;
      if (bos !== null) ids[b * T] = bos;
      ids.set(stream.subarray(s, s + body), b * T + (bos === null ? 0 : 1));
    }
    all.set(ids, w0 * T);
    const { acts } = await lm.lm.run(ids, B, T, { read: [site], skipLogits: true });
    const a = acts[site]!.data;
    const out = new Float32Array(B * body * d);
    let n = 0;
    for (let r = 0; r < B * T; r++) {
      if (bos !== null && ids[r] === bos) continue;
      out.set(a.subarray(r * d, (r + 1) * d), n * d);
      n++;
    }
    await sink(out.subarray(0, n * d));
    tick(w0 + B);
  }
  return all;
}

async function harvestInto(dir: string, c: SweepConfig, lm: OpenedLm, site: string, d: number, log: (s: string) => void, quiet: boolean): Promise<void> {
  const T = c.data.contextLength;
  const body = lm.lm.info.bos === null ? T : T - 1;
  const trainWindows = Math.ceil(c.data.trainTokens / body);
  const evalWindows = Math.ceil(c.data.evalTokens / body);
  const encode = (t: string) => lm.tokenizer.encode(t);
  const trainStream = encodeStream(shuffledDocuments(c.data.corpus, 'train', c.data.seed), encode, lm.separator, { maxTokens: trainWindows * body });
  const evalStream = encodeStream(shuffledDocuments(c.data.corpus, 'validation', c.data.seed), encode, lm.separator, { maxTokens: evalWindows * body });
  const fit = (s: Int32Array, w: number, what: string) => {
    const have = Math.floor(s.length / body);
    if (have < w) log(`  note: the ${what} split has ${have} windows of ${T} tokens, fewer than the ${w} asked for`);
    if (have === 0) throw new Error(`the ${c.data.corpus} ${what} split is too small for one ${T}-token window`);
    return Math.min(w, have);
  };
  const nTrain = fit(trainStream, trainWindows, 'train');
  const nEval = fit(evalStream, evalWindows, 'validation');
  const bos = lm.lm.info.bos;
  const trainRows = harvestRows(trainStream, nTrain, body, bos);
  const evalRows = harvestRows(evalStream, nEval, body, bos);
  log(`harvesting ${site} (d ${d}): ${trainRows} training rows, ${evalRows} held-out rows → ${dir}`);

  const bar = quiet
    ? null
    : new cliProgress.SingleBar(
        { format: 'harvest {bar} {value}/{total} windows | {tps} tok/s | ETA {eta_formatted}', stream: process.stderr, noTTYOutput: true, notTTYSchedule: 5000 },
        cliProgress.Presets.shades_classic,
      );
  bar?.start(nTrain + nEval, 0, { tps: '-' });
  const t0 = performance.now();
  const tick = (offset: number) => (w: number) => bar?.update(offset + w, { tps: Math.round(((offset + w) * T) / ((performance.now() - t0) / 1000)) });
  const write = async (name: string, windows: number, rows: number, stream: Int32Array, offset: number) => {
    const writer = await NpyRowWriter.create(join(dir, name), rows, d);
    try {
      const toks = await harvestWindows(lm, site, stream, T, windows, c.data.batch, (rows) => writer.append(rows), tick(offset));
      await writer.close();
      return toks;
    } catch (e) {
      await writer.abort();
      throw e;
    }
  };
  try {
    await write('train.npy', nTrain, trainRows, trainStream, 0);
    const evalTokens = await write('eval.npy', nEval, evalRows, evalStream, nTrain);
    bar?.stop();
    await writeFileAtomic(join(dir, 'eval-tokens.json'), JSON.stringify(Array.from(evalTokens)));
    const fingerprint = hashOf({
      v: HARVEST_VERSION,
      train: await fileFingerprint(join(dir, 'train.npy')),
      eval: await fileFingerprint(join(dir, 'eval.npy')),
      tokens: hashOf(Array.from(evalTokens)),
      lm: lm.fingerprint,
      site,
    });
    await writeFileAtomic(
      join(dir, 'meta.json'),
      JSON.stringify({ fingerprint, site, d, seqLen: T, evalWindows: nEval, rows: { train: trainRows, eval: evalRows }, lm: lm.description, data: c.data }, null, 2),
    );
  } catch (e) {
    bar?.stop();
    await rm(join(dir, 'meta.json'), { force: true });
    throw e;
  }
}
