/**
 * Row-major float32 tensors: a Float32Array plus its shape. Shapes are checked at public boundaries,
 * so a mismatch fails with a message naming the tensor instead of producing garbage deep in a kernel.
 */
export interface Tensor {
  readonly data: Float32Array;
  readonly shape: readonly number[];
}

/** A model's parameters: named tensors (K: their names, so a typo is a type error). SAE parameter names are SAELens's (W_enc, W_dec, b_enc, ...). */
export type Params<K extends string = string> = Record<K, Tensor>;

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) {
    if (!Number.isInteger(s) || s < 0) throw new Error(`invalid dimension ${s} in shape [${shape.join(', ')}]`);
    n *= s;
  }
  return n;
}

export function tensor(data: Float32Array, shape: readonly number[]): Tensor {
  const n = numel(shape);
  if (data.length !== n) throw new Error(`data has ${data.length} elements but shape [${shape.join(', ')}] needs ${n}`);
  return { data, shape: [...shape] };
}

export function zeros(shape: readonly number[]): Tensor {
  return { data: new Float32Array(numel(shape)), shape: [...shape] };
}

export function fromArray(values: ArrayLike<number>, shape: readonly number[]): Tensor {
  return tensor(Float32Array.from(values), shape);
}

export function clone(t: Tensor): Tensor {
  return { data: t.data.slice(), shape: [...t.shape] };
}

export function cloneParams(p: Params): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(p)) out[k] = clone(v);
  return out;
}

export function zerosLike(p: Params): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(p)) out[k] = zeros(v.shape);
  return out;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Throws `name: expected shape [..] but got [..]`; -1 in `expected` matches any size. */
export function assertShape(t: Tensor, expected: readonly number[], name: string): void {
  const ok = t.shape.length === expected.length && expected.every((d, i) => d === -1 || d === t.shape[i]);
  if (!ok) throw new Error(`${name}: expected shape [${expected.join(', ')}] but got [${t.shape.join(', ')}]`);
}

/** Rows and columns of a 2-D tensor (throws for other ranks). */
export function dims2(t: Tensor, name = 'tensor'): [number, number] {
  if (t.shape.length !== 2) throw new Error(`${name}: expected a 2-D tensor but got shape [${t.shape.join(', ')}]`);
  return [t.shape[0]!, t.shape[1]!];
}

/** Throws if any element is NaN or ±Inf, naming the tensor and the first bad index. */
export function assertFinite(t: Tensor, name: string): void {
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i]!)) throw new Error(`${name}: non-finite value ${d[i]} at flat index ${i}`);
  }
}
