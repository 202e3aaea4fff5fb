export { relu, reluConfigSchema, type ReluConfig } from './relu.js';
