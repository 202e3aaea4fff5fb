/**
 * Matched-L0 calibration (docs/specs/metrics-and-sweeps.md): find λ such that a λ-based SAE's trained L0 lands near a target.
 *
 * L0(λ) is decreasing and roughly a power law, so we work with f(λ) = ln L0(λ) − ln target on a log-λ axis:
 *   1. start from a hint (an already calibrated neighbouring target, scaled by the power law L0 ∝ λ^−1) or the
 *      recipe's λ, and step geometrically (×/÷ 4) until f changes sign — a bracket [λ_lo, λ_hi];
 *   2. regula falsi in (ln λ, f) with the Illinois modification (halve the stale end's f so the bracket keeps
 *      shrinking from both sides), until |L0/target − 1| ≤ tolerance or the iteration budget is spent.
 * Each evaluation is a short training run (a fraction of the point's steps) measured on a tail of the training
 * rows — never on the held-out rows the metrics use. The best λ seen (smallest |f|) is returned with the trace.
 */
export interface CalibrationProbe {
  lambda: number;
  l0: number;
}

export interface CalibrationResult {
  lambda: number;
  l0: number;
  trace: CalibrationProbe[];
  converged: boolean;
}

export interface CalibrationOptions {
  target: number;
  initialLambda: number;
  tolerance: number;
  maxIters: number;
  /** Trains a short run at λ and returns its L0. */
  probe: (lambda: number) => Promise<number>;
  /** Called after each probe (progress lines). */
  onProbe?: (p: CalibrationProbe, iter: number) => void;
}

/** ln of L0 with a floor, so an all-dead SAE (L0 = 0) still orders correctly. */
const lnL0 = (l0: number) => Math.log(Math.max(l0, 1e-3));

export async function calibrateLambda(o: CalibrationOptions): Promise<CalibrationResult> {
  if (!(o.initialLambda > 0)) throw new Error(`calibration needs a positive initial λ, got ${o.initialLambda}`);
  const trace: CalibrationProbe[] = [];
  const lnTarget = Math.log(o.target);
  const tol = Math.log1p(o.tolerance);
  const f = async (lambda: number) => {
    const l0 = await o.probe(lambda);
    if (!Number.isFinite(l0)) throw new Error(`calibration: L0 at λ = ${lambda} is ${l0}`);
    const p = { lambda, l0 };
    trace.push(p);
    o.onProbe?.(p, trace.length);
    return lnL0(l0) - lnTarget;
  };
  const best = () => trace.reduce((a, b) => (Math.abs(lnL0(b.l0) - lnTarget) < Math.abs(lnL0(a.l0) - lnTarget) ? b : a));
  const done = (converged: boolean): CalibrationResult => ({ ...best(), trace, converged });

  // 1. Bracket. f > 0: L0 too high → raise λ.
  let x = Math.log(o.initialLambda);
  let fx = await f(o.initialLambda);
  if (Math.abs(fx) <= tol) return done(true);
  let lo: { x: number; f: number } | null = fx > 0 ? { x, f: fx } : null;
  let hi: { x: number; f: number } | null = fx < 0 ? { x, f: fx } : null;
  const step = Math.log(4);
  while (!(lo && hi)) {
    if (trace.length >= o.maxIters) return done(false);
    x += fx > 0 ? step : -step;
    fx = await f(Math.exp(x));
    if (Math.abs(fx) <= tol) return done(true);
    if (fx > 0) lo = { x, f: fx };
    else hi = { x, f: fx };
  }

  // 2. Illinois regula falsi on ln λ.
  let side = 0;
  while (trace.length < o.maxIters) {
    const [l, h] = [lo, hi];
    const xNew: number = l.x - (l.f * (h.x - l.x)) / (h.f - l.f);
    const fNew = await f(Math.exp(xNew));
    if (Math.abs(fNew) <= tol) return done(true);
    if (fNew > 0) {
      lo = { x: xNew, f: fNew };
      if (side === 1) h.f /= 2;
      side = 1;
    } else {
      hi = { x: xNew, f: fNew };
      if (side === -1) l.f /= 2;
      side = -1;
    }
  }
  return done(false);
}

/** Slope d ln L0 / d ln λ from probes (least squares), or −1 when the trace cannot tell. */
export function l0Slope(trace: CalibrationProbe[]): number {
  const pts = trace.filter((p) => p.l0 > 0 && p.lambda > 0).map((p) => [Math.log(p.lambda), Math.log(p.l0)] as const);
  if (pts.length < 2) return -1;
  const mx = pts.reduce((a, p) => a + p[0], 0) / pts.length;
  const my = pts.reduce((a, p) => a + p[1], 0) / pts.length;
  let sxy = 0;
  let sxx = 0;
  for (const [px, py] of pts) {
    sxy += (px - mx) * (py - my);
    sxx += (px - mx) ** 2;
  }
  const s = sxx > 0 ? sxy / sxx : -1;
  return s < -0.05 ? s : -1;
}

/** Initial λ for `target` from calibrated neighbours (nearest in log-L0), by L0 ∝ λ^slope; null without hints. */
export function lambdaFromHints(target: number, hints: CalibrationProbe[]): number | null {
  const usable = hints.filter((h) => h.l0 > 0 && h.lambda > 0);
  if (usable.length === 0) return null;
  const near = usable.reduce((a, b) => (Math.abs(Math.log(b.l0 / target)) < Math.abs(Math.log(a.l0 / target)) ? b : a));
  const slope = l0Slope(usable);
  return near.lambda * Math.exp(Math.log(target / near.l0) / slope);
}
