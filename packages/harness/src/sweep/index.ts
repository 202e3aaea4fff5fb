/** Sweeps: grids of SAEs over sparsity, matched-L0 calibration, cached points, Pareto frontiers, plots, reports. */
export * from './config.js';
export * from './calibrate.js';
export * from './frontier.js';
export * from './tokens.js';
export * from './lm.js';
export * from './dataset.js';
export * from './point.js';
export * from './plot.js';
export * from './report.js';
export * from './run.js';
export { codeVersion, lmCodeVersion, sourceHash } from './code-version.js';
