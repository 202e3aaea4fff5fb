export { gated, gatedConfigSchema, type GatedConfig } from './gated.js';
