export * from './tensor.js';
export * from './rng.js';
export * from './gemm.js';
export * from './kernels.js';
export * from './lm.js';
export * from './sae.js';
export * from './sae-ops.js';
