/**
 * L2-regularised binary logistic regression, fitted exactly by Newton's method in float64.
 *
 * Objective (scikit-learn's LogisticRegression(penalty="l2", C), which SAEBench's sparse probing uses with C = 1):
 *   minimise ½‖w‖² + C · Σᵢ log(1 + exp(−sᵢ (w·xᵢ + b))),   sᵢ = ±1, the intercept b unpenalised.
 * Gradient w + C Σ (pᵢ − yᵢ) xᵢ, Hessian I + C Σ pᵢ(1 − pᵢ) xᵢ xᵢᵀ (no I on the intercept; a 1e-10 jitter keeps
 * it positive definite on separable data). Newton steps with step halving until the objective decreases; stops
 * when the Newton decrement is below 1e-12 or after 100 steps. Probes here have k ≤ a few hundred features, so the
 * (k+1)² Hessian is cheap.
 */

export interface LogisticModel {
  /** Weights, one per feature. */
  w: Float64Array;
  b: number;
  iterations: number;
}

/** x: row-major [n, k]; y: 0/1 labels. */
export function fitLogistic(x: ArrayLike<number>, y: ArrayLike<number>, n: number, k: number, opts: { C?: number; maxIter?: number } = {}): LogisticModel {
  if (x.length !== n * k) throw new Error(`fitLogistic: x has ${x.length} values, expected n·k = ${n * k}`);
  if (y.length !== n) throw new Error(`fitLogistic: y has ${y.length} labels, expected ${n}`);
  const C = opts.C ?? 1;
  const maxIter = opts.maxIter ?? 100;
  const p = k + 1; // parameters: w (k), b
  const theta = new Float64Array(p);
  const margin = new Float64Array(n);
  const objective = (t: Float64Array) => {
    let reg = 0;
    for (let j = 0; j < k; j++) reg += t[j]! * t[j]!;
    let loss = 0;
    for (let i = 0; i < n; i++) {
      let z = t[k]!;
      for (let j = 0; j < k; j++) z += t[j]! * x[i * k + j]!;
      margin[i] = z;
      const s = y[i] ? z : -z;
      loss += s > 0 ? Math.log1p(Math.exp(-s)) : -s + Math.log1p(Math.exp(s)); // log(1 + e^−s), stable
    }
    return 0.5 * reg + C * loss;
  };
  let f = objective(theta);
  const g = new Float64Array(p);
  const H = new Float64Array(p * p);
  let it = 0;
  for (; it < maxIter; it++) {
    g.fill(0);
    H.fill(0);
    for (let j = 0; j < k; j++) {
      g[j] = theta[j]!;
      H[j * p + j] = 1;
    }
    H[k * p + k] = 1e-10;
    const row = new Float64Array(p);
    for (let i = 0; i < n; i++) {
      const z = margin[i]!;
      const prob = z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
      const r = C * (prob - (y[i] ? 1 : 0));
      const wgt = C * prob * (1 - prob);
      for (let j = 0; j < k; j++) row[j] = x[i * k + j]!;
      row[k] = 1;
      for (let a = 0; a < p; a++) {
        g[a]! += r * row[a]!;
        if (wgt === 0) continue;
        const wa = wgt * row[a]!;
        for (let c = 0; c <= a; c++) H[a * p + c]! += wa * row[c]!;
      }
    }
    for (let a = 0; a < p; a++) for (let c = 0; c < a; c++) H[c * p + a] = H[a * p + c]!;
    const step = choleskySolve(H, g, p);
    let decrement = 0;
    for (let a = 0; a < p; a++) decrement += g[a]! * step[a]!;
    if (!(decrement > 1e-12)) break;
    let t = 1;
    const cand = new Float64Array(p);
    let accepted = false;
    for (let h = 0; h < 40; h++, t /= 2) {
      for (let a = 0; a < p; a++) cand[a] = theta[a]! - t * step[a]!;
      const fc = objective(cand);
      if (fc <= f - 1e-4 * t * decrement) {
        theta.set(cand);
        f = fc;
        accepted = true;
        break;
      }
    }
    if (!accepted) {
      objective(theta); // restore margins
      break;
    }
  }
  return { w: theta.slice(0, k), b: theta[k]!, iterations: it };
}

/** Solves A z = b for symmetric positive-definite A [p, p] (Cholesky; a tiny ridge is added if it fails). */
function choleskySolve(A: Float64Array, b: Float64Array, p: number): Float64Array {
  for (let ridge = 0; ; ridge = ridge === 0 ? 1e-10 : ridge * 100) {
    const L = new Float64Array(p * p);
    let ok = true;
    for (let i = 0; i < p && ok; i++) {
      for (let j = 0; j <= i; j++) {
        let s = A[i * p + j]! + (i === j ? ridge : 0);
        for (let q = 0; q < j; q++) s -= L[i * p + q]! * L[j * p + q]!;
        if (i === j) {
          if (!(s > 0)) {
            ok = false;
            break;
          }
          L[i * p + i] = Math.sqrt(s);
        } else L[i * p + j] = s / L[j * p + j]!;
      }
    }
    if (!ok) {
      if (ridge > 1e6) throw new Error('fitLogistic: Hessian is not positive definite');
      continue;
    }
    const z = new Float64Array(p);
    for (let i = 0; i < p; i++) {
      let s = b[i]!;
      for (let q = 0; q < i; q++) s -= L[i * p + q]! * z[q]!;
      z[i] = s / L[i * p + i]!;
    }
    for (let i = p - 1; i >= 0; i--) {
      let s = z[i]!;
      for (let q = i + 1; q < p; q++) s -= L[q * p + i]! * z[q]!;
      z[i] = s / L[i * p + i]!;
    }
    return z;
  }
}

/** Predicted labels (w·x + b > 0) for rows of x [n, k]. */
export function predictLogistic(m: LogisticModel, x: ArrayLike<number>, n: number): Uint8Array {
  const k = m.w.length;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let z = m.b;
    for (let j = 0; j < k; j++) z += m.w[j]! * x[i * k + j]!;
    out[i] = z > 0 ? 1 : 0;
  }
  return out;
}
