/**
 * Language models by source string, for the CLI and sweeps: `llama2c:PATH`, `onnx:PATH` (from @saelab/activations)
 * and `longhorn:DIR` (a Longhorn LM trained by @saelab/ssm-longhorn), each with its tokenizer.
 */
import { openSource, type TextTokenizer } from '@saelab/activations';
import type { HookableLM } from '@saelab/core';

export async function openLanguageModel(source: string): Promise<{ lm: HookableLM; tokenizer: TextTokenizer }> {
  if (source.startsWith('longhorn:')) {
    throw new Error(`longhorn sources are not wired yet (${source})`);
  }
  return openSource({ source, site: '', tokens: 1, out: '', corpus: 'sotu+brown', split: 'train', contextLength: 128, batchSize: 16, dtype: 'float32', shardRows: 1 << 17 });
}
