/**
 * Dense row-major float32 kernels besides GEMM (`gemm.ts`) and the sparse ones (`fast/`): the bias broadcast and
 * the column reduction of the SAE encoder and decoder. Each has a float64 reference in `reference.ts` that
 * test/kernels.test.ts compares against. Both allocate their result.
 */
import { type Tensor, dims2, zeros } from './tensor.js';

function checkVector(v: Tensor, n: number, name: string): void {
  if (v.data.length !== n) throw new Error(`${name}: expected a vector of length ${n} but got shape [${v.shape.join(', ')}]`);
}

/** Returns m[i, :] − v. */
export function subRowVector(m: Tensor, v: Tensor): Tensor {
  const [rows, cols] = dims2(m, 'subRowVector');
  checkVector(v, cols, 'subRowVector bias');
  const out = zeros([rows, cols]);
  const a = m.data;
  const b = v.data;
  const o = out.data;
  for (let i = 0; i < rows; i++) {
    const r = i * cols;
    for (let j = 0; j < cols; j++) o[r + j] = a[r + j]! - b[j]!;
  }
  return out;
}

/** Column sums of an [rows, cols] matrix (float64 accumulation), optionally scaled. */
export function columnSums(m: Tensor, scale = 1): Tensor {
  const [rows, cols] = dims2(m, 'columnSums');
  const acc = new Float64Array(cols);
  const a = m.data;
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let j = 0; j < cols; j++) acc[j] += a[o + j]!;
  }
  const out = zeros([cols]);
  for (let j = 0; j < cols; j++) out.data[j] = acc[j]! * scale;
  return out;
}
