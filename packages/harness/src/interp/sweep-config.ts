/** The sweep config's `interp` block (see sweep-interp.ts). */
import { z } from 'zod';
import { PROBE_TASKS, ProbeTaskSchema } from './probe-data.js';

export const sweepInterpSchema = z
  .object({
    /** Probing and dashboards (only with an LM). */
    enabled: z.boolean().default(true),
    tasks: z.array(ProbeTaskSchema).min(1).default([...PROBE_TASKS]),
    ks: z.array(z.number().int().positive()).min(1).default([1, 2, 5, 20]),
    /** The k whose mean probing error is the report's headline frontier. */
    headlineK: z.number().int().positive().default(5),
    /** pos: tokens per class and probe split. */
    maxPerClass: z.number().int().positive().default(300),
    /** pos: tokens read per Brown document. */
    posDocTokens: z.number().int().positive().default(512),
    /** Document tasks: tokens mean-pooled per document (default: one window, contextLength − 1). */
    docTokens: z.number().int().positive().optional(),
    dashboards: z.boolean().default(true),
    /** L0 the dashboards' points are chosen nearest to (default: the geometric mean of the L0 targets). */
    dashboardL0: z.number().positive().optional(),
    dashboardTokens: z.number().int().positive().default(10_000),
    dashboardLatents: z.number().int().nonnegative().default(64),
  })
  .strict();
export type SweepInterpConfig = z.output<typeof sweepInterpSchema>;
