export * from './atomic.js';
export * from './float16.js';
export * from './dtype.js';
export * from './safetensors.js';
export * from './npy.js';
export * from './activations.js';
export * from './checkpoint.js';
