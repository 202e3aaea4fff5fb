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
  type SaeContext,
  type Params,
  type SparseRows,
  type Tensor,
  SHORT_RUN_RESAMPLING,
  accumulate,
  baseSaeConfigSchema,
  decodeAffine,
  decoderBackward,
  defineSae,
  encoderBackward,
  encoderInput,
  encoderPre,
  freshContext,
  initTiedDictionary,
  lossAndGradsResult,
  penaltySparsity,
  reconstructionLoss,
  rowsAbove,
  sampledDots,
  workspaceOf,
  zeros,
} from '@saelab/core';

export const gatedConfigSchema = baseSaeConfigSchema;
export type GatedConfig = z.infer<typeof gatedConfigSchema>;
type GatedParams = 'W_enc' | 'b_gate' | 'r_mag' | 'b_mag' | 'W_dec' | 'b_dec';

interface GatedForward {
  input: Tensor;
  /** P = input·W_enc, dense [B, m]. */
  shared: Tensor;
  /** ReLU(π_gate) on the gate's open entries (π_gate > 0). */
  gateAct: SparseRows;
  /** f = 1[π_gate > 0] ⊙ ReLU(π_mag) on the same pattern (zero where π_mag ≤ 0). */
  f: SparseRows;
  /** exp(r_mag). */
  magScale: Float32Array;
}

/** Encoder forward (eqs. 5–6): one dense GEMM for P, then both paths only where the gate is open. */
async function gatedForward(p: Params<GatedParams>, x: Tensor, cfg: GatedConfig, ctx: SaeContext): Promise<GatedForward> {
  const ws = workspaceOf(ctx);
  const input = encoderInput(x, p.b_dec, cfg.applyBDecToInput, ctx);
  const shared = await encoderPre(ctx, input, p.W_enc, null);
  const [rows, m] = shared.shape as [number, number];
  const magScale = p.r_mag.data.map(Math.exp);
  const bGate = p.b_gate.data;
  const bMag = p.b_mag.data;
  const gateAct = ws.sparseRows('gate', rows, m);
  // The gate is open where P + b_gate > 0, i.e. P > −b_gate (the same entries: −b_gate is exact, and the sign of
  // P + b_gate in float64 is that of the exact sum): one SIMD scan over P, then π_gate on the open entries only.
  rowsAbove(shared, bGate.map((b) => -b), gateAct);
  forEachEntry(gateAct, (e, _r, i) => (gateAct.values[e] = gateAct.values[e]! + bGate[i]!));
  const f = gateAct.withValues(ws.buffer('f', gateAct.nnz));
  forEachEntry(gateAct, (e, r, i) => {
    const mag = shared.data[r * m + i]! * magScale[i]! + bMag[i]!;
    f.values[e] = mag > 0 ? mag : 0;
  });
  return { input, shared, gateAct, f, magScale };
}

/** Calls fn(e, row, column) for every stored entry. */
function forEachEntry(s: SparseRows, fn: (e: number, r: number, i: number) => void): void {
  for (let r = 0; r < s.rows; r++) for (let e = s.rowPtr[r]!, end = s.rowPtr[r + 1]!; e < end; e++) fn(e, r, s.indices[e]!);
}

function float64ToTensor(a: Float64Array): Tensor {
  const t = zeros([a.length]);
  t.data.set(a);
  return t;
}

export const gated = defineSae<GatedConfig, undefined, GatedParams>({
  name: 'gated',
  source: import.meta.url,
  saelensArchitecture: 'gated',
  sparsity: penaltySparsity,
  decoderConstraint: 'unit-norm',
  configSchema: gatedConfigSchema,
  // Paper: Adam; β1 = 0 works well for Gated (docs/specs/sae.md). Dead latents resampled as the paper trained
  // (following Bricken et al. 2023; core sae/resample.ts), on the short-run schedule.
  recipe: {
    optimizer: { kind: 'adam', lr: 5e-5, beta1: 0, beta2: 0.999 },
    lrSchedule: 'constant',
    lrWarmupFraction: 0.01,
    sparsityWarmupFraction: 0.05,
    gradClip: 0,
    defaultSparsity: 1,
    resample: SHORT_RUN_RESAMPLING,
  },
  // A resampled latent: gate and magnitude biases 0, magnitude scale exp(0) = 1 (both paths = the new W_enc column).
  latentResets: () => ({ b_gate: 0, r_mag: 0, b_mag: 0 }),

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
    return { W_enc, b_gate: zeros(m), r_mag: zeros(m), b_mag: zeros(m), W_dec, b_dec };
  },

  async encode(p, x, cfg, ctx) {
    return (await gatedForward(p, x, cfg, freshContext(ctx))).f.toDense();
  },

  // The gate opens where P_i > −b_gate,i; the magnitude path is put at the same cut, so it is open there too.
  setFiringCut(p, cut) {
    for (let i = 0; i < cut.length; i++) p.b_gate.data[i] = p.b_mag.data[i] = -cut[i]!;
  },

  async lossAndGrads(p, x, cfg, lambda, _state, ctx) {
    const rows = x.shape[0]!;
    const m = cfg.dSae;
    const { input, shared, gateAct, f, magScale } = await gatedForward(p, x, cfg, ctx);
    let l1 = 0;
    for (let e = 0; e < gateAct.nnz; e++) l1 += gateAct.values[e]!;

    // Reconstruction through f, and the auxiliary reconstruction through ReLU(π_gate) with a frozen decoder.
    const xHat = await decodeAffine(ctx, f, p.W_dec, p.b_dec);
    const xHatAux = await decodeAffine(ctx, gateAct, p.W_dec, p.b_dec, 'xHatAux');
    const { loss: mse, dXHat } = reconstructionLoss(x, xHat, ctx);
    const { loss: aux, dXHat: dAux } = reconstructionLoss(x, xHatAux, ctx, 'dAux');
    const dec = await decoderBackward(ctx, f, dXHat, p.W_dec);
    // Stop-gradient: the aux term gives no W_dec / b_dec gradient, only ∂aux/∂ReLU(π_gate) = dAux·W_decᵀ.
    const dGateAct = await sampledDots(ctx, dAux, p.W_dec, gateAct, 'dGateAct');

    // dπ_mag = ∂L/∂f where f is on; dπ_gate = λ/B + ∂aux/∂ReLU(π_gate) where π_gate > 0 (all stored entries).
    const dShared = gateAct.withValues(workspaceOf(ctx).buffer('dShared', gateAct.nnz)); // ∂L/∂P = dπ_gate + dπ_mag ⊙ exp(r_mag)
    const dBGate = new Float64Array(m);
    const dBMag = new Float64Array(m);
    const dRMag = new Float64Array(m);
    const dF = dec.dF!;
    forEachEntry(gateAct, (e, r, i) => {
      const g = lambda / rows + dGateAct.values[e]!;
      dBGate[i] += g;
      let d = g;
      if (f.values[e]! > 0) {
        const dm = dF.values[e]!;
        dBMag[i] += dm;
        d += dm * magScale[i]!;
        dRMag[i] += dm * shared.data[r * m + i]! * magScale[i]!; // ∂π_mag/∂r_mag = P ⊙ exp(r_mag)
      }
      dShared.values[e] = d;
    });
    const enc = await encoderBackward(ctx, input, dShared, p.W_enc, cfg.applyBDecToInput);
    const sparsity = (lambda * l1) / rows;
    return lossAndGradsResult(
      {
        loss: mse + sparsity + aux,
        parts: { mse, sparsity, aux },
        grads: {
          W_enc: enc.dWEnc,
          b_gate: float64ToTensor(dBGate),
          r_mag: float64ToTensor(dRMag),
          b_mag: float64ToTensor(dBMag),
          W_dec: dec.dWDec,
          b_dec: accumulate(dec.dBDec, enc.dBDecFromInput),
        },
        xHat,
      },
      f,
    );
  },

});
