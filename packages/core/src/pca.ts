/**
 * PCA, the dense baseline of a sparsity frontier: at rank r it reconstructs every token from r coefficients
 * (the same number of active coefficients as an SAE at L0 = r, but dense and with an orthonormal dictionary),
 *   x̂ = μ + Σ_{k<r} ((x − μ)·u_k) u_k,
 * u_k the eigenvectors of the training rows' covariance by decreasing eigenvalue. Everything in float64; the
 * eigendecomposition is cyclic Jacobi (Golub & Van Loan, Matrix Computations, §8.5), exact to rounding for the
 * small symmetric matrices (d ≤ a few thousand) of residual streams.
 */
import type { RowSource } from './io/index.js';
import { type Tensor, dims2 } from './tensor.js';

export interface PcaModel {
  d: number;
  mean: Float64Array;
  /** Eigenvalues of the covariance (divided by N), descending. */
  eigenvalues: Float64Array;
  /** [d, d] row-major: row k is the k-th principal direction (unit norm). */
  components: Float64Array;
  rows: number;
}

/**
 * Eigen-decomposition of a symmetric [n, n] matrix (row-major, not modified): eigenvalues descending and the
 * matching unit eigenvectors as rows.
 */
export function symmetricEigen(matrix: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  if (matrix.length !== n * n) throw new Error(`symmetricEigen: expected ${n * n} entries, got ${matrix.length}`);
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale = Math.max(scale, Math.abs(a[i]!));
  if (!Number.isFinite(scale)) throw new Error('symmetricEigen: non-finite matrix');
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! ** 2;
    if (off === 0 || Math.sqrt(off) <= 1e-15 * scale) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (apq === 0) continue;
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // A ← Jᵀ A J on rows/columns p and q.
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j]! - a[i * n + i]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((col, k) => {
    values[k] = a[col * n + col]!;
    for (let i = 0; i < n; i++) vectors[k * n + i] = v[i * n + col]!;
  });
  return { values, vectors };
}

/**
 * Fits PCA on the rows of `source` (training rows only), reading at most `maxRows` of them, evenly strided
 * (the covariance of a d-dimensional stream is well estimated long before a million rows).
 */
export async function fitPca(source: RowSource, opts: { maxRows?: number; batch?: number } = {}): Promise<PcaModel> {
  const d = source.d;
  if (source.rows === 0) throw new Error('fitPca: no rows');
  const maxRows = opts.maxRows ?? 262_144;
  const stride = Math.max(1, Math.floor(source.rows / maxRows));
  const batch = opts.batch ?? 8192;
  const take = async (fn: (row: Float32Array, o: number) => void) => {
    let used = 0;
    for (let s = 0; s < source.rows; s += batch) {
      const n = Math.min(batch, source.rows - s);
      const data = await source.readRows(s, n);
      for (let r = 0; r < n; r++) {
        if ((s + r) % stride !== 0 || used >= maxRows) continue;
        fn(data, r * d);
        used++;
      }
    }
    return used;
  };
  const mean = new Float64Array(d);
  const rows = await take((x, o) => {
    for (let j = 0; j < d; j++) mean[j] += x[o + j]!;
  });
  for (let j = 0; j < d; j++) mean[j] /= rows;
  const cov = new Float64Array(d * d);
  const c = new Float64Array(d);
  await take((x, o) => {
    for (let j = 0; j < d; j++) c[j] = x[o + j]! - mean[j]!;
    for (let i = 0; i < d; i++) {
      const ci = c[i]!;
      for (let j = i; j < d; j++) cov[i * d + j] += ci * c[j]!;
    }
  });
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      cov[i * d + j] /= rows;
      cov[j * d + i] = cov[i * d + j]!;
    }
  }
  if (!cov.every(Number.isFinite)) throw new Error('fitPca: the rows contain non-finite values');
  const { values, vectors } = symmetricEigen(cov, d);
  return { d, mean, eigenvalues: values, components: vectors, rows };
}

/** The rank-`rank` PCA reconstruction of x [B, d] (float32 out, float64 inside). */
export function pcaReconstruct(model: PcaModel, x: Tensor, rank: number): Tensor {
  const [b, d] = dims2(x, 'pcaReconstruct: x');
  if (d !== model.d) throw new Error(`pcaReconstruct: x has d = ${d}, the PCA ${model.d}`);
  if (!Number.isInteger(rank) || rank < 0 || rank > d) throw new Error(`pcaReconstruct: rank must be an integer in [0, ${d}], got ${rank}`);
  const out = new Float32Array(b * d);
  const c = new Float64Array(d);
  const y = new Float64Array(d);
  for (let r = 0; r < b; r++) {
    for (let j = 0; j < d; j++) c[j] = x.data[r * d + j]! - model.mean[j]!;
    y.set(model.mean);
    for (let k = 0; k < rank; k++) {
      let coef = 0;
      for (let j = 0; j < d; j++) coef += c[j]! * model.components[k * d + j]!;
      for (let j = 0; j < d; j++) y[j] += coef * model.components[k * d + j]!;
    }
    for (let j = 0; j < d; j++) out[r * d + j] = y[j]!;
  }
  return { data: out, shape: [b, d] };
}
