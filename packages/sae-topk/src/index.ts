export { topK, topKConfigSchema, type TopKConfig, type TopKState } from './topk.js';
