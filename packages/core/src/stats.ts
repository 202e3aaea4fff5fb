/**
 * Small, exact statistics for comparing frontiers: Student's t distribution, Welch's unequal-variance test with
 * the Welch–Satterthwaite degrees of freedom, Holm's step-down correction, and bootstrap resampling weights.
 * All in float64; the distribution functions follow Numerical Recipes (3rd ed., §6.1 ln Γ by Lanczos, §6.4 the
 * incomplete beta function by its continued fraction, evaluated with the modified Lentz method).
 */
import type { Rng } from './rng.js';

const LANCZOS = [57.1562356658629235, -59.5979603554754912, 14.1360979747417471, -0.491913816097620199, 0.339946499848118887e-4, 0.465236289270485756e-4, -0.983744753048795646e-4, 0.158088703224912494e-3, -0.210264441724104883e-3, 0.217439618115212643e-3, -0.164318106536763890e-3, 0.844182239838527433e-4, -0.261908384015814087e-4, 0.368991826595316234e-5];

/** ln Γ(x), x > 0 (Lanczos, g = 607/128, 14 terms; relative error < 1e-15). */
export function lnGamma(x: number): number {
  if (!(x > 0)) throw new Error(`lnGamma: x must be positive, got ${x}`);
  let y = x;
  const tmp0 = x + 5.2421875;
  const tmp = (x + 0.5) * Math.log(tmp0) - tmp0;
  let ser = 0.999999999999997092;
  for (const c of LANCZOS) ser += c / ++y;
  return tmp + Math.log((2.5066282746310005 * ser) / x);
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const FPMIN = 1e-300;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < FPMIN) d = FPMIN;
  d = 1 / d;
  let h = d;
  for (let m = 1; m < 10_000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) return h;
  }
  throw new Error(`incomplete beta: continued fraction did not converge (a ${a}, b ${b}, x ${x})`);
}

/** Regularised incomplete beta function I_x(a, b). */
export function incompleteBeta(a: number, b: number, x: number): number {
  if (!(a > 0 && b > 0)) throw new Error(`incompleteBeta: a and b must be positive, got ${a}, ${b}`);
  if (!(x >= 0 && x <= 1)) throw new Error(`incompleteBeta: x must be in [0, 1], got ${x}`);
  if (x === 0 || x === 1) return x;
  const lnFront = lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x);
  const front = Math.exp(lnFront);
  return x < (a + 1) / (a + b + 2) ? (front * betaContinuedFraction(a, b, x)) / a : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** Two-sided p-value P(|T| ≥ |t|) of Student's t with `df` degrees of freedom (df may be fractional, or Infinity). */
export function studentTTwoSidedP(t: number, df: number): number {
  if (!Number.isFinite(t)) {
    if (Number.isNaN(t)) throw new Error('studentTTwoSidedP: t is NaN');
    return 0;
  }
  if (!(df > 0)) throw new Error(`studentTTwoSidedP: df must be positive, got ${df}`);
  if (!Number.isFinite(df)) return 2 * normalUpperTail(Math.abs(t));
  return incompleteBeta(df / 2, 0.5, df / (df + t * t));
}

/** P(Z ≥ z) of the standard normal (erfc by its Chebyshev fit, Numerical Recipes §6.2; relative error < 1.2e-7). */
export function normalUpperTail(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc =
    t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}

/** The two-sided critical value c with P(|T| ≥ c) = alpha (bisection on the p-value; 1e-10 absolute). */
export function studentTCritical(alpha: number, df: number): number {
  if (!(alpha > 0 && alpha < 1)) throw new Error(`studentTCritical: alpha must be in (0, 1), got ${alpha}`);
  let lo = 0;
  let hi = 1;
  while (studentTTwoSidedP(hi, df) > alpha) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-10; i++) {
    const mid = (lo + hi) / 2;
    if (studentTTwoSidedP(mid, df) > alpha) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Sample mean and (n − 1)-variance. */
export function meanVar(xs: readonly number[]): { mean: number; variance: number; n: number } {
  const n = xs.length;
  if (n === 0) throw new Error('meanVar: no values');
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : Number.NaN;
  return { mean, variance, n };
}

export interface DifferenceTest {
  /** mean(a) − mean(b). */
  difference: number;
  /** Standard error of the difference (seed part and, when given, the evaluation-sampling part). */
  se: number;
  t: number;
  df: number;
  p: number;
}

/**
 * Welch's test of mean(a) = mean(b) for two independent samples (here: per-seed values of two architectures),
 * with an optional extra variance `extraVariance` of the difference from an independent source whose degrees of
 * freedom are large (here: the paired bootstrap over evaluation tokens), added to the seed variance. The degrees
 * of freedom are Welch–Satterthwaite's, the extra part counted with infinite df:
 *   se² = s_a²/n_a + s_b²/n_b + v_extra,   df = se⁴ / ((s_a²/n_a)²/(n_a−1) + (s_b²/n_b)²/(n_b−1)).
 * Needs n ≥ 2 on both sides.
 */
export function welchTest(a: readonly number[], b: readonly number[], extraVariance = 0): DifferenceTest {
  if (a.length < 2 || b.length < 2) throw new Error(`welchTest: needs at least 2 values per side, got ${a.length} and ${b.length}`);
  if (!(extraVariance >= 0)) throw new Error(`welchTest: extraVariance must be ≥ 0, got ${extraVariance}`);
  const A = meanVar(a);
  const B = meanVar(b);
  const va = A.variance / A.n;
  const vb = B.variance / B.n;
  const se2 = va + vb + extraVariance;
  const difference = A.mean - B.mean;
  const seedDen = (va * va) / (A.n - 1) + (vb * vb) / (B.n - 1);
  const df = seedDen > 0 ? (se2 * se2) / seedDen : Number.POSITIVE_INFINITY;
  if (se2 === 0) return { difference, se: 0, t: difference === 0 ? 0 : Math.sign(difference) * Infinity, df, p: difference === 0 ? 1 : 0 };
  const se = Math.sqrt(se2);
  const t = difference / se;
  return { difference, se, t, df, p: studentTTwoSidedP(t, df) };
}

/** Holm's step-down adjusted p-values (family-wise error control), in the input order. */
export function holmAdjust(p: readonly number[]): number[] {
  const m = p.length;
  const order = p.map((v, i) => [v, i] as const).sort((x, y) => x[0] - y[0]);
  const out = new Array<number>(m);
  let running = 0;
  order.forEach(([v, i], rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * v));
    out[i] = running;
  });
  return out;
}

/** Bootstrap weights: how many times each of `n` units is drawn in n draws with replacement. */
export function bootstrapCounts(rng: Rng, n: number): Float64Array {
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) w[rng.int(n)]! += 1;
  return w;
}

/** The q-quantile (numpy's linear interpolation) of values; sorts a copy. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('quantile: no values');
  const s = [...values].sort((a, b) => a - b);
  const h = (s.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(s.length - 1, lo + 1);
  return s[lo]! + (h - lo) * (s[hi]! - s[lo]!);
}
