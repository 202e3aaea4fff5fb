export * from './registry.js';
export * from './sae-folder.js';
export * from './data.js';
export * from './evaluate.js';
export * from './train.js';
export * from './codec.js';
export { buildProgram, main } from './cli.js';
export * from './sweep/index.js';
export * from './lm-sources.js';
