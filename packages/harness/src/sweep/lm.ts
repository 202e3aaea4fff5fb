/**
 * The language models a sweep can read activations from, opened as (HookableLM, tokenizer, token streams):
 *  - `default`: the project's own Longhorn LM trained on the npm corpora (SOTU + Brown) with a restricted GPT-2
 *    vocabulary — built on first use and cached under `<cache>/lm/<hash of its settings>/`; an interrupted build
 *    resumes from Longhorn's training state;
 *  - `longhorn:DIR`: a Longhorn model folder written by that build (model.safetensors, config.json, vocab.json);
 *  - `llama2c:PATH`: a llama2.c checkpoint with the tokenizer file beside it (e.g. ../shared/models/stories260K).
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type TextTokenizer, Llama2cModel, createTokenizer, gpt2Tokenizer } from '@saelab/activations';
import { type HookableLM, Rng, writeFileAtomic } from '@saelab/core';
import { EOT, LonghornLM, UNK, buildVocab, loadModel, loadVocab, nextTokenTargets, restrictTokenizer, saveVocab, toModelIds, train as trainLonghorn } from '@saelab/ssm-longhorn';
import { fileFingerprint } from '../data.js';
import { lmCodeVersion } from './code-version.js';
import { hashOf } from '../hash.js';
import type { LmBuildConfig, SweepConfig } from './config.js';
import { encodeStream, shuffledDocuments } from './tokens.js';

/** Bump when the build recipe changes in a way its settings do not capture. */
const LM_BUILD_VERSION = 2; // 2: the vocabulary format of @saelab/ssm-longhorn (0 = <unk>, 1 = <eot>)

export interface OpenedLm {
  lm: HookableLM;
  tokenizer: TextTokenizer;
  /** What identifies the model's weights and tokenizer (goes into the data fingerprint). */
  fingerprint: string;
  description: string;
  /** Separator between documents in token streams (BOS for models that have one). */
  separator: number;
  /** Extra provenance (e.g. the default LM's training loss). */
  provenance: Record<string, unknown>;
}

/** `blocks.{⌈L/2⌉−1}.hook_resid_post`: the residual stream after the middle layer. */
export function middleResidSite(nLayers: number): string {
  return `blocks.${Math.max(0, Math.ceil(nLayers / 2) - 1)}.hook_resid_post`;
}

export async function openSweepLm(c: SweepConfig, cacheDir: string, log: (s: string) => void, quiet = false): Promise<OpenedLm> {
  if (c.source === 'default') return buildDefaultLm(c.lm!, c.data.corpus, join(cacheDir, 'lm'), log, quiet);
  const i = c.source.indexOf(':');
  const kind = c.source.slice(0, i);
  const path = c.source.slice(i + 1);
  if (kind === 'longhorn') return openLonghornDir(path);
  if (kind === 'llama2c') {
    if (!existsSync(path)) throw new Error(`--source ${c.source}: no such file`);
    const lm = Llama2cModel.load(path);
    const dir = dirname(path);
    const toks = existsSync(join(dir, 'tokenizer.bin')) ? ['tokenizer.bin'] : readdirSync(dir).filter((f) => /^tok.*\.bin$/.test(f));
    if (toks.length !== 1) throw new Error(`--source ${c.source}: expected one tokenizer file (tok*.bin) beside the checkpoint, found ${toks.join(', ') || 'none'}`);
    const tokenizer = createTokenizer(`llama2c:${join(dir, toks[0]!)}`, lm.info.vocabSize);
    const fingerprint = hashOf({ model: await fileFingerprint(path), tokenizer: await fileFingerprint(join(dir, toks[0]!)), code: lmCodeVersion('llama2c') });
    return { lm, tokenizer, fingerprint, description: `llama2.c ${basename(path)} (${lm.info.nLayers} layers, d ${lm.info.dModel})`, separator: tokenizer.bos ?? 0, provenance: {} };
  }
  throw new Error(`unknown source '${c.source}'`);
}

export async function openLonghornDir(dir: string): Promise<OpenedLm> {
  const vocab = loadVocab(dir);
  if (!vocab) throw new Error(`${dir}: a Longhorn source needs vocab.json (the restricted GPT-2 vocabulary written with the model)`);
  const lm = await loadModel(dir);
  const tokenizer = restrictTokenizer(gpt2Tokenizer(), vocab);
  if (tokenizer.vocabSize !== lm.config.vocabSize) throw new Error(`${dir}: vocab.json has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${lm.config.vocabSize}`);
  const info = existsSync(join(dir, 'build.json')) ? (JSON.parse(await readFile(join(dir, 'build.json'), 'utf8')) as Record<string, unknown>) : {};
  const fingerprint = hashOf({ model: await fileFingerprint(join(dir, 'model.safetensors')), vocab: hashOf(vocab.baseIds), code: lmCodeVersion('longhorn') });
  return {
    lm,
    tokenizer,
    fingerprint,
    description: `Longhorn LM ${lm.info.name} (vocab ${lm.config.vocabSize}) from ${dir}`,
    separator: EOT,
    provenance: { lmDir: dir, lmBuild: info },
  };
}

/**
 * Trains (once) a Longhorn LM on the corpora's train split: a seeded random window per batch row, AdamW with
 * warm-up + cosine decay (the Longhorn package's trainer). Returns the cached model when its folder is complete.
 */
export async function buildDefaultLm(cfg: LmBuildConfig, corpus: string, root: string, log: (s: string) => void, quiet = false): Promise<OpenedLm> {
  // The trained weights depend on the Longhorn training code too (kernels, optimiser, initialisation).
  const key = { version: LM_BUILD_VERSION, cfg, corpus, code: lmCodeVersion('longhorn') };
  const dir = join(root, `longhorn-${hashOf(key)}`);
  if (existsSync(join(dir, 'build.json'))) return openLonghornDir(dir);
  await mkdir(dir, { recursive: true });

  log(`building the default LM (Longhorn, d ${cfg.dModel}, ${cfg.nLayers} layers, vocab ${cfg.vocabSize}) in ${dir}`);
  const gpt2 = gpt2Tokenizer();
  const docs = shuffledDocuments(corpus, 'train', cfg.seed);
  const raw = encodeStream(docs, (t) => gpt2.encode(t), gpt2.bos!, { maxChars: cfg.maxChars });
  const vocab = buildVocab(gpt2.name, raw.filter((g) => g !== gpt2.bos), cfg.vocabSize);
  const stream = toModelIds(vocab, raw).map((t, i) => (raw[i] === gpt2.bos ? EOT : t));
  let unknown = 0;
  for (const t of stream) if (t === UNK) unknown++;
  log(`  ${stream.length} training tokens, ${((100 * unknown) / stream.length).toFixed(1)}% outside the ${cfg.vocabSize}-token vocabulary`);
  await saveVocab(dir, vocab);

  const L = cfg.contextLength;
  if (stream.length < L + 1) throw new Error(`the ${corpus} train split gave only ${stream.length} tokens, fewer than one ${L}-token window`);
  const lm = LonghornLM.create({ vocabSize: vocab.baseIds.length + 2, dModel: cfg.dModel, nLayers: cfg.nLayers, dState: cfg.dState }, cfg.seed);
  const data = (step: number) => {
    const rng = new Rng(cfg.seed * 1_000_003 + step + 1);
    const tokens = new Int32Array(cfg.batch * L);
    for (let b = 0; b < cfg.batch; b++) {
      const s = rng.int(stream.length - L);
      tokens.set(stream.subarray(s, s + L), b * L);
    }
    return { tokens, targets: nextTokenTargets(tokens, cfg.batch, L), batch: cfg.batch, seqLen: L };
  };
  const logs = await trainLonghorn(
    lm,
    { lr: cfg.lr, totalSteps: cfg.steps, warmupSteps: Math.min(cfg.warmupSteps, cfg.steps - 1), seed: cfg.seed, checkpointEvery: Math.max(10, Math.floor(cfg.steps / 10)) },
    { data, dir, progress: !quiet },
  );
  const tail = logs.slice(-Math.max(1, Math.floor(logs.length / 10)));
  const finalLoss = tail.length ? tail.reduce((a, l) => a + l.loss, 0) / tail.length : null;
  await writeFileAtomic(join(dir, 'build.json'), JSON.stringify({ ...key, trainTokens: stream.length, unknownFraction: unknown / stream.length, finalTrainLoss: finalLoss }, null, 2));
  log(`  LM built: final training loss ${finalLoss?.toFixed(3) ?? '(resumed, see build.json)'} nats/token`);
  return openLonghornDir(dir);
}
