/** Interpretability: k-sparse probing and latent dashboards (docs/interpretability.md). */
export * from './logistic.js';
export * from './sparse-probe.js';
export * from './probe-data.js';
export * from './probe.js';
export * from './latent-stats.js';
export * from './dashboard.js';
export * from './dashboard-html.js';
export * from './sweep-interp.js';
