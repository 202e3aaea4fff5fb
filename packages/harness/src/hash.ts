/**
 * Content hashes of configurations, for cache keys and resume checks: sha-256 of a JSON rendering with object keys
 * sorted at every level, so two equal configurations hash alike whatever order their fields were written in.
 */
import { createHash } from 'node:crypto';

/** JSON with object keys sorted (arrays keep their order). */
export const stableJson = (v: unknown): string =>
  JSON.stringify(v, (_k, val) =>
    val && typeof val === 'object' && !Array.isArray(val) ? Object.fromEntries(Object.entries(val).sort(([a], [b]) => a.localeCompare(b))) : val,
  );

/** 16 hex digits of sha-256 over `stableJson(v)`. */
export const hashOf = (v: unknown) => createHash('sha256').update(stableJson(v)).digest('hex').slice(0, 16);
