/**
 * `defineSae`: an architecture from the parts that are its own. It supplies what every architecture repeats —
 * the affine decode x̂ = f·W_dec + b_dec, the common SAELens cfg.json fields (d_in, d_sae, apply_b_dec_to_input),
 * an empty training state — and registers the result (registry.ts).
 */
import type { Params } from '../tensor.js';
import type { BaseSaeConfig, SaeArchitecture } from './contract.js';
import { decodeAffine } from './ops.js';
import { registerArchitecture } from './registry.js';

/** A training state with its JSON form, for exact resume (e.g. AuxK's dead-latent counters). */
export interface TrainStateCodec<C, S> {
  init(cfg: C): S;
  export(state: S): Record<string, unknown>;
  import(cfg: C, json: Record<string, unknown>): S;
}

/** cfg.json fields specific to an architecture, and back to config fields (null and missing both mean "default"). */
export interface SaelensFields<C> {
  write(cfg: C): Record<string, unknown>;
  read(json: Record<string, unknown>): Record<string, unknown>;
}

type Supplied = 'decode' | 'decoderConstraint' | 'initTrainState' | 'exportTrainState' | 'importTrainState' | 'toSaelensConfig' | 'fromSaelensConfig';

export type SaeDefinition<C extends BaseSaeConfig, S, P extends string> = Omit<SaeArchitecture<C, S, P>, Supplied> & {
  /** Default: x̂ = f·W_dec + b_dec. */
  decode?: SaeArchitecture<C, S, P>['decode'];
  decoderConstraint: 'unit-norm' | 'none' | ((cfg: C) => 'unit-norm' | 'none');
  /** Default: no state (undefined). */
  trainState?: TrainStateCodec<C, S>;
  /** Default: none beyond the common fields. */
  saelensFields?: SaelensFields<C>;
};

const nullToUndefined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v ?? undefined]));

/** Builds and registers an architecture. */
export function defineSae<C extends BaseSaeConfig, S = undefined, P extends string = string>(def: SaeDefinition<C, S, P>): SaeArchitecture<C, S, P> {
  const { trainState, saelensFields, decoderConstraint, decode, ...own } = def;
  const constraint = decoderConstraint;
  const arch: SaeArchitecture<C, S, P> = {
    ...own,
    decoderConstraint: typeof constraint === 'function' ? constraint : () => constraint,
    decode: decode ?? ((p: Params<P>, f, _cfg, ctx) => {
      const q = p as Params<string>;
      return decodeAffine(ctx.engine, f, q.W_dec, q.b_dec);
    }),
    initTrainState: trainState ? (cfg) => trainState.init(cfg) : () => undefined as S,
    ...(trainState ? { exportTrainState: (s: S) => trainState.export(s), importTrainState: (cfg: C, json: Record<string, unknown>) => trainState.import(cfg, json) } : {}),
    toSaelensConfig: (cfg) => saelensFields?.write(cfg) ?? {},
    fromSaelensConfig: (json) =>
      def.configSchema.parse({
        dIn: json.d_in,
        dSae: json.d_sae,
        applyBDecToInput: json.apply_b_dec_to_input ?? true,
        ...nullToUndefined(saelensFields?.read(json) ?? {}),
      }),
  };
  return registerArchitecture(arch);
}
