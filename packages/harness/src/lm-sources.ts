/**
 * Language models by source string, for the CLI: `llama2c:PATH`, `onnx:PATH` (from @saelab/activations) and
 * `longhorn:DIR` (a Longhorn LM folder written by the sweep's LM build: model.safetensors, config.json, vocab.json).
 */
import { openSource, type TextTokenizer } from '@saelab/activations';
import type { HookableLM } from '@saelab/core';
import { openLonghornDir } from './sweep/lm.js';

export async function openLanguageModel(source: string): Promise<{ lm: HookableLM; tokenizer: TextTokenizer }> {
  if (source.startsWith('longhorn:')) {
    const { lm, tokenizer } = await openLonghornDir(source.slice('longhorn:'.length));
    return { lm, tokenizer };
  }
  return openSource({ source, site: '', tokens: 1, out: '', corpus: 'sotu+brown', split: 'train', contextLength: 128, batchSize: 16, dtype: 'float32', shardRows: 1 << 17 });
}
