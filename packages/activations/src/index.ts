/**
 * @saelab/activations — the data side of saelab: corpora, tokenizers, llama2.c and ONNX language models with
 * hooks (HookableLM), the harvest loop and the sharded activation store.
 */
export * from './llama2c/tokenizer.js';
export * from './llama2c/checkpoint.js';
export * from './llama2c/model.js';
export * from './llama2c/sampler.js';
export * from './generate.js';
export * from './source.js';
export * from './corpora.js';
export * from './tokenizers.js';
export * from './store.js';
export * from './harvest.js';
export * from './onnx-lm.js';
export * from './splice.js';
export * from './splice-field.js';
export * from './pos.js';
