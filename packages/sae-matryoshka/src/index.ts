export { matryoshka, matryoshkaConfigSchema, levelWidths, type MatryoshkaConfig } from './matryoshka.js';
