/** Shared test fixtures: where stories260K lives, and a small self-built llama2.c tokenizer. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import { Rng } from '@saelab/core';
import { Llama2cTokenizer } from '../src/llama2c/tokenizer.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const modelsDir = process.env.SAELAB_MODELS_DIR ?? join(repoRoot, '../shared/models');
export const stories = join(modelsDir, 'stories260K');
export const haveStories = existsSync(join(stories, 'stories260K.bin')) && existsSync(join(stories, 'tok512.bin'));
export const storiesSkipMessage = `stories260K not found at ${stories} (set SAELAB_MODELS_DIR): skipping tests that need it`;
if (!haveStories) console.warn(storiesSkipMessage);

/**
 * A sentencepiece-like vocabulary: <unk>, <s>, </s>, 256 byte tokens, then single characters and multi-character
 * merges with random scores — enough to exercise merging, ties and byte fallback.
 */
export function smallTokenizer(seed = 1): Llama2cTokenizer {
  const rng = new Rng(seed);
  const enc = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
  const pieces: Uint8Array[] = [enc('<unk>'), enc('\n<s>\n'), enc('\n</s>\n')];
  const scores: number[] = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    pieces.push(enc(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
    scores.push(0);
  }
  const words = [' ', 'a', 'b', 'c', 'd', 'e', 'é', ' a', ' b', 'ab', 'bc', 'abc', ' ab', 'cd', 'de', 'cde', ' abc', 'aa', 'aaa', ' c', 'ba'];
  for (const w of words) {
    pieces.push(enc(w));
    // Coarse scores so that ties happen.
    scores.push(-rng.int(4));
  }
  return new Llama2cTokenizer(pieces, Float32Array.from(scores), 8);
}

const { onnx } = onnxProto;

/**
 * A tiny causal "LM" as an ONNX graph:  h0 = E[ids];  h1 = tanh(cumsum_t(h0) · W);  logits = h1 · U.
 * Outputs: logits [B,T,V], hidden_0 [B,T,d], hidden_1 [B,T,d].
 */
export function buildTinyOnnxLm(V: number, d: number, seed: number): { bytes: Uint8Array; E: Float32Array; W: Float32Array; U: Float32Array } {
  const rng = new Rng(seed);
  const E = rng.fillNormal(new Float32Array(V * d));
  const W = rng.fillNormal(new Float32Array(d * d), 0.3);
  const U = rng.fillNormal(new Float32Array(d * V));
  const f32 = onnx.TensorProto.DataType.FLOAT;
  const init = (name: string, dims: number[], data: Float32Array) =>
    onnx.TensorProto.create({ name, dims, dataType: f32, rawData: new Uint8Array(data.buffer.slice(0)) });
  const axis = onnx.TensorProto.create({ name: 'axis', dims: [], dataType: onnx.TensorProto.DataType.INT64, int64Data: [1] });
  const node = (opType: string, input: string[], output: string[]) => onnx.NodeProto.create({ opType, input, output });
  const value = (name: string, elemType: number, dims: (string | number)[]) =>
    onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType, shape: { dim: dims.map((x) => (typeof x === 'string' ? { dimParam: x } : { dimValue: x })) } } },
    });
  const graph = onnx.GraphProto.create({
    name: 'tiny-lm',
    node: [
      node('Gather', ['E', 'input_ids'], ['hidden_0']),
      node('CumSum', ['hidden_0', 'axis'], ['prefix']),
      node('MatMul', ['prefix', 'W'], ['pre1']),
      node('Tanh', ['pre1'], ['hidden_1']),
      node('MatMul', ['hidden_1', 'U'], ['logits']),
    ],
    initializer: [init('E', [V, d], E), init('W', [d, d], W), init('U', [d, V], U), axis],
    input: [value('input_ids', onnx.TensorProto.DataType.INT64, ['B', 'T'])],
    output: [value('logits', f32, ['B', 'T', V]), value('hidden_0', f32, ['B', 'T', d]), value('hidden_1', f32, ['B', 'T', d])],
  });
  const model = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph });
  return { bytes: onnx.ModelProto.encode(model).finish(), E, W, U };
}

