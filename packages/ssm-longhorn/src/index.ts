export * from './scan.js';
export * from './scan-pool.js';
export * from './ops.js';
export * from './mixer.js';
export * from './model.js';
export * from './train.js';
export * from './mqar.js';
export * from './vocab.js';
