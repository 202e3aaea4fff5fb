export { jumpRelu, jumpReluConfigSchema, type JumpReluConfig } from './jumprelu.js';
