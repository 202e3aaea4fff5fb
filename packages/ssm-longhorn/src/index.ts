export * from './scan.js';
export * from './ops.js';
export * from './mixer.js';
export * from './model.js';
