/**
 * Gated SAE — Rajamanoharan et al. 2024a, "Improving Dictionary Learning with Gated Sparse Autoencoders".
 * All of this architecture's math is in this file; affine maps and their backward passes come from core.
 *
 * The gate and the magnitude share W_enc; the magnitude path rescales its columns by exp(r_mag) (eq. 6):
 *   P       = (x − b_dec)·W_enc
 *   π_gate  = P + b_gate                    π_mag = P ⊙ exp(r_mag) + b_mag
 *   f       = 1[π_gate > 0] ⊙ ReLU(π_mag)                                         (eq. 5)
 *   L       = ‖x − x̂(f)‖² + λ‖ReLU(π_gate)‖₁ + ‖x − x̂_frozen(ReLU(π_gate))‖²     (eq. 8)
 * where x̂_frozen uses stop-gradient copies of W_dec and b_dec. W_dec rows are kept at unit norm (the paper's
 * choice), so the L1 term needs no decoder-norm weighting. The Heaviside has zero gradient: the gate parameters
 * learn only through the L1 and auxiliary terms.
 */
import { z } from 'zod';
import {
  type LossAndGrads,
  type SaeArchitecture,
  type Tensor,
  accumulate,
  baseSaeConfigSchema,
  columnSums,
  decodeAffine,
  decoderBackward,
  encoderBackward,
  encoderInput,
  initTiedDictionary,
  reconstructionLoss,
  zeros,
} from '@saelab/core';
import type { Params } from '@saelab/core';

export const gatedConfigSchema = baseSaeConfigSchema;
export type GatedConfig = z.infer<typeof gatedConfigSchema>;

interface GatedPre {
  input: Tensor;
  /** P = input·W_enc. */
  shared: Tensor;
  piGate: Tensor;
  piMag: Tensor;
}

async function preActivations(p: Params, x: Tensor, cfg: GatedConfig, engine: import('@saelab/core').GemmEngine): Promise<GatedPre> {
  const input = encoderInput(x, p.b_dec!, cfg.applyBDecToInput);
  const shared = await engine.gemm(input, p.W_enc!);
  const m = cfg.dSae;
  const piGate = zeros(shared.shape);
  const piMag = zeros(shared.shape);
  const scale = p.r_mag!.data.map(Math.exp);
  for (let i = 0; i < shared.data.length; i++) {
    const j = i % m;
    piGate.data[i] = shared.data[i]! + p.b_gate!.data[j]!;
    piMag.data[i] = shared.data[i]! * scale[j]! + p.b_mag!.data[j]!;
  }
  return { input, shared, piGate, piMag };
}

function gatedLatents(piGate: Tensor, piMag: Tensor): Tensor {
  const f = zeros(piGate.shape);
  for (let i = 0; i < f.data.length; i++) if (piGate.data[i]! > 0 && piMag.data[i]! > 0) f.data[i] = piMag.data[i]!;
  return f;
}

export const gated: SaeArchitecture<GatedConfig> = {
  name: 'gated',
  saelensArchitecture: 'gated',
  sparsityKnob: 'lambda',
  decoderConstraint: () => 'unit-norm',
  configSchema: gatedConfigSchema,
  // Paper: Adam; β1 = 0 works well for Gated (sae.md).
  recipe: {
    optimizer: { kind: 'adam', lr: 5e-5, beta1: 0, beta2: 0.999 },
    lrSchedule: 'constant',
    lrWarmupFraction: 0.01,
    sparsityWarmupFraction: 0.05,
    gradClip: 0,
    defaultSparsity: 1,
  },

  paramShapes: ({ dIn, dSae }) => ({
    W_enc: [dIn, dSae],
    b_gate: [dSae],
    r_mag: [dSae],
    b_mag: [dSae],
    W_dec: [dSae, dIn],
    b_dec: [dIn],
  }),

  init(cfg, rng) {
    const { W_enc, W_dec, b_dec } = initTiedDictionary(cfg.dIn, cfg.dSae, rng);
    const m = [cfg.dSae];
    return { W_enc: W_enc!, b_gate: zeros(m), r_mag: zeros(m), b_mag: zeros(m), W_dec: W_dec!, b_dec: b_dec! };
  },

  async encode(p, x, cfg, { engine }) {
    const { piGate, piMag } = await preActivations(p, x, cfg, engine);
    return gatedLatents(piGate, piMag);
  },

  decode: (p, f, _cfg, { engine }) => decodeAffine(engine, f, p.W_dec!, p.b_dec!),

  initTrainState: () => undefined,

  async lossAndGrads(p, x, cfg, lambda, _state, { engine }): Promise<LossAndGrads> {
    const rows = x.shape[0]!;
    const m = cfg.dSae;
    const { input, shared, piGate, piMag } = await preActivations(p, x, cfg, engine);
    const f = gatedLatents(piGate, piMag);
    const gateAct = zeros(piGate.shape); // ReLU(π_gate)
    let l1 = 0;
    for (let i = 0; i < gateAct.data.length; i++) {
      const v = piGate.data[i]!;
      if (v > 0) {
        gateAct.data[i] = v;
        l1 += v;
      }
    }

    // Reconstruction through f, and the auxiliary reconstruction through ReLU(π_gate) with a frozen decoder.
    const [xHat, xHatAux] = await Promise.all([
      decodeAffine(engine, f, p.W_dec!, p.b_dec!),
      decodeAffine(engine, gateAct, p.W_dec!, p.b_dec!),
    ]);
    const { loss: mse, dXHat } = reconstructionLoss(x, xHat);
    const { loss: aux, dXHat: dAux } = reconstructionLoss(x, xHatAux);
    const [dec, dGateAct] = await Promise.all([
      decoderBackward(engine, f, dXHat, p.W_dec!),
      engine.gemm(dAux, p.W_dec!, { transB: true }), // stop-gradient: no W_dec / b_dec gradient from the aux term
    ]);

    // dπ_mag = ∂L/∂f where f is on; dπ_gate = (λ/B + ∂aux/∂ReLU(π_gate)) where π_gate > 0.
    const scale = p.r_mag!.data.map(Math.exp);
    const dShared = zeros(shared.shape); // ∂L/∂P = dπ_gate + dπ_mag ⊙ exp(r_mag)
    const dPiGate = zeros(shared.shape);
    const dPiMag = zeros(shared.shape);
    const dRMag = new Float64Array(m);
    for (let i = 0; i < shared.data.length; i++) {
      const j = i % m;
      if (piGate.data[i]! <= 0) continue;
      const g = lambda / rows + dGateAct.data[i]!;
      dPiGate.data[i] = g;
      let d = g;
      if (piMag.data[i]! > 0) {
        const dm = dec.dF!.data[i]!;
        dPiMag.data[i] = dm;
        d += dm * scale[j]!;
        dRMag[j] += dm * shared.data[i]! * scale[j]!; // ∂π_mag/∂r_mag = P ⊙ exp(r_mag)
      }
      dShared.data[i] = d;
    }
    const enc = await encoderBackward(engine, input, dShared, p.W_enc!, cfg.applyBDecToInput);
    const rMagGrad = zeros([m]);
    rMagGrad.data.set(dRMag);
    const sparsity = (lambda * l1) / rows;
    return {
      loss: mse + sparsity + aux,
      parts: { mse, sparsity, aux },
      grads: {
        W_enc: enc.dWEnc,
        b_gate: columnSums(dPiGate),
        r_mag: rMagGrad,
        b_mag: columnSums(dPiMag),
        W_dec: dec.dWDec,
        b_dec: accumulate(dec.dBDec, enc.dBDecFromInput),
      },
      latents: f,
      xHat,
    };
  },

  toSaelensConfig: () => ({}),
  fromSaelensConfig: (json) =>
    gatedConfigSchema.parse({ dIn: json.d_in, dSae: json.d_sae, applyBDecToInput: json.apply_b_dec_to_input ?? true }),
};
