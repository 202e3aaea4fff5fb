export { topK, topKConfigSchema, type TopKConfig, type TopKState } from './topk.js';
export { batchTopK, batchTopKConfigSchema, type BatchTopKConfig, type BatchTopKState } from './batchtopk.js';
