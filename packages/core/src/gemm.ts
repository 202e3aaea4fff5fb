/**
 * Matrix multiply engines. C = alpha · op(A) · op(B) + beta · C, op = identity or transpose, row-major.
 *
 * The engine is chosen by measurement (see docs/design.md): onnxruntime-node's MLAS GEMM runs at
 * ~100 GFLOP/s on the 2-core dev machine, ~5× tfjs-wasm and ~150× plain JS, so it is the default.
 * `@tensorflow/tfjs-node` is used only if it is installed and measured faster (it cannot be installed here).
 * A plain-JS engine serves tiny shapes (where the ~40 µs per-call overhead of ORT dominates) and tests.
 */
import { createRequire } from 'node:module';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { type Tensor, dims2, zeros } from './tensor.js';

const { onnx } = onnxProto;

export interface GemmOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  /** Scale of `c` added to the product (needs `c`). */
  beta?: number;
  /** Accumulator: with beta ≠ 0 it is read; the result is always a new tensor. */
  c?: Tensor;
  /** Row vector of length n added to every row of the product (an affine map's bias, folded into the GEMM). */
  bias?: Tensor;
  /** Where to write the [m, n] result (returned); lets callers reuse one buffer across steps. */
  out?: Tensor;
}

/** Result of a fused affine map + per-row top-k (see GemmEngine.affineTopK). */
export interface TopKResult {
  /** [rows, k] values, each row in descending order (ties: lower column first). */
  values: Float32Array;
  /** [rows, k] column indices matching `values`. */
  indices: Int32Array;
  /** The full [rows, n] product when asked for (keepProduct), else null. */
  product: Tensor | null;
}

/** Shapes of a causal grouped-query attention (see GemmEngine.causalAttention). */
export interface AttentionShape {
  batch: number;
  seqLen: number;
  heads: number;
  /** Key/value heads; query head h reads kv head ⌊h / (heads / kvHeads)⌋. */
  kvHeads: number;
  headSize: number;
}

export interface GemmEngine {
  readonly name: string;
  gemm(a: Tensor, b: Tensor, opts?: GemmOptions): Promise<Tensor>;
  /**
   * Optional fused kernel: causal grouped-query attention softmax(q·kᵀ/√hs + causal mask)·v for every sequence and
   * head, q as [batch, seqLen, heads, headSize], k and v as [batch, seqLen, kvHeads, headSize] (row-major, i.e. the
   * rows of x·Wqᵀ, x·Wkᵀ, x·Wvᵀ); returns [batch, seqLen, heads, headSize]. Engines without it leave it undefined;
   * callers keep their own loop (the reference).
   */
  causalAttention?(q: Float32Array, k: Float32Array, v: Float32Array, shape: AttentionShape): Promise<Float32Array>;
  /**
   * Optional fused kernel: per-row top-k of a·b + bias without handing the full product back to JS (a [4096, 4096]
   * product is 64 MiB). Engines without it leave it undefined; callers fall back to gemm + a JS top-k.
   */
  affineTopK?(a: Tensor, b: Tensor, bias: Tensor, k: number, keepProduct: boolean): Promise<TopKResult>;
}

/** Resolve op(A)·op(B) dimensions, with an error that names the mismatch. */
export function gemmDims(a: Tensor, b: Tensor, opts: GemmOptions = {}): { m: number; k: number; n: number } {
  const [ar, ac] = dims2(a, 'gemm A');
  const [br, bc] = dims2(b, 'gemm B');
  const [m, k] = opts.transA ? [ac, ar] : [ar, ac];
  const [k2, n] = opts.transB ? [bc, br] : [br, bc];
  if (k !== k2) {
    throw new Error(
      `gemm: inner dimensions differ: op(A) is [${m}, ${k}] and op(B) is [${k2}, ${n}] (transA=${!!opts.transA}, transB=${!!opts.transB})`,
    );
  }
  if (opts.c && (opts.c.shape[0] !== m || opts.c.shape[1] !== n || opts.c.shape.length !== 2)) {
    throw new Error(`gemm: C has shape [${opts.c.shape.join(', ')}] but the product is [${m}, ${n}]`);
  }
  if (opts.bias && opts.bias.data.length !== n) throw new Error(`gemm: bias has ${opts.bias.data.length} entries but the product has ${n} columns`);
  if (opts.c && opts.bias) throw new Error('gemm: give either c or bias, not both');
  if (opts.out && (opts.out.data.length !== m * n || opts.out.shape[0] !== m)) {
    throw new Error(`gemm: out has shape [${opts.out.shape.join(', ')}] but the product is [${m}, ${n}]`);
  }
  return { m, k, n };
}

/** Plain-JS GEMM (i-k-j loop order, contiguous inner loop). Fine for small shapes. */
export const jsEngine: GemmEngine = {
  name: 'js',
  async gemm(a, b, opts = {}) {
    return gemmSync(a, b, opts);
  },
};

export function gemmSync(a: Tensor, b: Tensor, opts: GemmOptions = {}): Tensor {
  const { m, k, n } = gemmDims(a, b, opts);
  const alpha = opts.alpha ?? 1;
  const beta = opts.beta ?? 0;
  const out = opts.out ?? zeros([m, n]);
  const C = out.data;
  if (opts.out) C.fill(0);
  const A = a.data;
  const B = b.data;
  const lda = a.shape[1]!;
  const ldb = b.shape[1]!;
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let p = 0; p < k; p++) {
      const aip = alpha * (opts.transA ? A[p * lda + i]! : A[i * lda + p]!);
      if (aip === 0) continue;
      if (opts.transB) {
        for (let j = 0; j < n; j++) C[ci + j] += aip * B[j * ldb + p]!;
      } else {
        const bp = p * ldb;
        for (let j = 0; j < n; j++) C[ci + j] += aip * B[bp + j]!;
      }
    }
  }
  if (opts.c && beta !== 0) {
    const c = opts.c.data;
    for (let i = 0; i < C.length; i++) C[i] += beta * c[i]!;
  }
  if (opts.bias) {
    const b = opts.bias.data;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) C[i * n + j] += b[j]!;
  }
  return out;
}

export interface OrtEngineOptions {
  /** Intra-op threads (default: all cores). */
  threads?: number;
  /** Products with m·k·n below this run in plain JS (ORT's per-call overhead dominates). */
  smallThreshold?: number;
}

/** Builds a one-node ONNX graph `C = Gemm(A, B[, C0])` with symbolic dimensions. */
export function buildGemmModel(transA: boolean, transB: boolean, alpha: number, beta: number, withC: boolean): Uint8Array {
  const f32 = onnx.TensorProto.DataType.FLOAT;
  const input = (name: string) =>
    onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType: f32, shape: { dim: [{ dimParam: `${name}_0` }, { dimParam: `${name}_1` }] } } },
    });
  const attr = (name: string, v: { i?: number; f?: number }) =>
    onnx.AttributeProto.create({
      name,
      type: v.i !== undefined ? onnx.AttributeProto.AttributeType.INT : onnx.AttributeProto.AttributeType.FLOAT,
      ...v,
    });
  const inputs = withC ? ['A', 'B', 'C0'] : ['A', 'B'];
  const graph = onnx.GraphProto.create({
    name: 'gemm',
    node: [
      onnx.NodeProto.create({
        opType: 'Gemm',
        input: inputs,
        output: ['C'],
        attribute: [attr('transA', { i: transA ? 1 : 0 }), attr('transB', { i: transB ? 1 : 0 }), attr('alpha', { f: alpha }), attr('beta', { f: beta })],
      }),
    ],
    input: inputs.map(input),
    output: [onnx.ValueInfoProto.create({ name: 'C', type: { tensorType: { elemType: f32 } } })],
  });
  const model = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph });
  return onnx.ModelProto.encode(model).finish();
}

/** ONNX graph: P = Gemm(A, B, bias) then (V, I) = TopK(P, K) along rows (largest, sorted). Outputs P, V, I. */
export function buildAffineTopKModel(): Uint8Array {
  const f32 = onnx.TensorProto.DataType.FLOAT;
  const i64 = onnx.TensorProto.DataType.INT64;
  const vi = (name: string, elemType: number, dims: string[]) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimParam: d })) } } } });
  const graph = onnx.GraphProto.create({
    name: 'affine_topk',
    node: [
      onnx.NodeProto.create({ opType: 'Gemm', input: ['A', 'B', 'bias'], output: ['P'] }),
      onnx.NodeProto.create({
        opType: 'TopK',
        input: ['P', 'K'],
        output: ['V', 'I'],
        attribute: [
          onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 }),
          onnx.AttributeProto.create({ name: 'largest', type: onnx.AttributeProto.AttributeType.INT, i: 1 }),
          onnx.AttributeProto.create({ name: 'sorted', type: onnx.AttributeProto.AttributeType.INT, i: 1 }),
        ],
      }),
    ],
    input: [vi('A', f32, ['m', 'd']), vi('B', f32, ['d', 'n']), vi('bias', f32, ['one', 'n']), vi('K', i64, ['k1'])],
    output: [vi('P', f32, ['m', 'n']), vi('V', f32, ['m', 'k']), vi('I', i64, ['m', 'k'])],
  });
  const model = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * ONNX graph of causal grouped-query attention. The kvMul = heads / kvHeads query heads sharing a kv head are
 * contiguous, so Q as [B, KV, kvMul·T, hs] against K as [B, KV, T, hs] is one batched MatMul per kv head — no copy of
 * K or V per query head; the [kvMul·T, T] mask input (0 on and below the diagonal of each T × T block, −∞ above)
 * makes it causal. Inputs Q [B, T, H, hs], K, V [B, T, KV, hs], mask, scale [1], and the two reshape targets;
 * output O [B, T, H, hs].
 */
export function buildCausalAttentionModel(): Uint8Array {
  const f32 = onnx.TensorProto.DataType.FLOAT;
  const i64 = onnx.TensorProto.DataType.INT64;
  const vi = (name: string, elemType: number, dims: string[]) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimParam: d })) } } } });
  const perm = (p: number[]) => [onnx.AttributeProto.create({ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: p })];
  const node = (opType: string, input: string[], output: string, attribute: ReturnType<typeof perm> = []) =>
    onnx.NodeProto.create({ opType, input, output: [output], attribute });
  const graph = onnx.GraphProto.create({
    name: 'causal_attention',
    node: [
      node('Transpose', ['Q'], 'Qt', perm([0, 2, 1, 3])), // [B, H, T, hs]
      node('Reshape', ['Qt', 'groupShape'], 'Qg'), // [B, KV, kvMul·T, hs]
      node('Transpose', ['K'], 'Kt', perm([0, 2, 3, 1])), // [B, KV, hs, T]
      node('Transpose', ['V'], 'Vt', perm([0, 2, 1, 3])), // [B, KV, T, hs]
      node('MatMul', ['Qg', 'Kt'], 'S'),
      node('Mul', ['S', 'scale'], 'Ss'),
      node('Add', ['Ss', 'mask'], 'Sm'),
      onnx.NodeProto.create({ opType: 'Softmax', input: ['Sm'], output: ['P'], attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 })] }),
      node('MatMul', ['P', 'Vt'], 'Og'), // [B, KV, kvMul·T, hs]
      node('Reshape', ['Og', 'headShape'], 'Oh'), // [B, H, T, hs]
      node('Transpose', ['Oh'], 'O', perm([0, 2, 1, 3])), // [B, T, H, hs]
    ],
    input: [
      vi('Q', f32, ['B', 'T', 'H', 'hs']), vi('K', f32, ['B', 'T', 'KV', 'hs']), vi('V', f32, ['B', 'T', 'KV', 'hs']),
      vi('mask', f32, ['GT', 'T']), vi('scale', f32, ['one']), vi('groupShape', i64, ['four']), vi('headShape', i64, ['four']),
    ],
    output: [vi('O', f32, ['B', 'T', 'H', 'hs'])],
  });
  const model = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph });
  return onnx.ModelProto.encode(model).finish();
}

/** The [kvMul·T, T] additive causal mask of `buildCausalAttentionModel`: row r is query position r mod T. */
function causalMask(seqLen: number, kvMul: number): Float32Array {
  const m = new Float32Array(kvMul * seqLen * seqLen);
  for (let r = 0; r < kvMul * seqLen; r++) m.fill(-Infinity, r * seqLen + (r % seqLen) + 1, (r + 1) * seqLen);
  return m;
}

/** onnxruntime-node engine: one cached session per (transA, transB, alpha, beta, hasC). */
export function createOrtEngine(options: OrtEngineOptions = {}): GemmEngine {
  const sessions = new Map<string, Promise<ort.InferenceSession>>();
  const masks = new Map<string, Float32Array>();
  const threads = options.threads ?? 0; // 0 = ORT default (all cores)
  const small = options.smallThreshold ?? 32 * 32 * 32;
  const session = (key: string, make: () => Uint8Array) => {
    let s = sessions.get(key);
    if (!s) {
      s = ort.InferenceSession.create(make(), {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
      });
      sessions.set(key, s);
    }
    return s;
  };
  return {
    name: 'onnxruntime',
    async gemm(a, b, opts = {}) {
      const { m, k, n } = gemmDims(a, b, opts);
      if (m * k * n < small || m === 0 || n === 0 || k === 0) return gemmSync(a, b, opts);
      const transA = !!opts.transA;
      const transB = !!opts.transB;
      const alpha = opts.alpha ?? 1;
      const beta = opts.bias ? 1 : opts.c ? (opts.beta ?? 0) : 0;
      const withC = beta !== 0;
      const key = `${+transA}${+transB}|${alpha}|${beta}|${+withC}`;
      const s = await session(key, () => buildGemmModel(transA, transB, alpha, beta, withC));
      const feeds: Record<string, ort.Tensor> = {
        A: new ort.Tensor('float32', a.data, a.shape as number[]),
        B: new ort.Tensor('float32', b.data, b.shape as number[]),
      };
      if (opts.bias) feeds.C0 = new ort.Tensor('float32', opts.bias.data, [1, n]); // broadcast over rows
      else if (withC) feeds.C0 = new ort.Tensor('float32', opts.c!.data, [m, n]);
      if (opts.out) {
        // ORT writes straight into the caller's buffer: no 64 MiB allocation per call.
        await s.run(feeds, { C: new ort.Tensor('float32', opts.out.data, [m, n]) });
        return opts.out;
      }
      const out = await s.run(feeds);
      return { data: out.C!.data as Float32Array, shape: [m, n] };
    },
    async causalAttention(q, k, v, sh) {
      const { batch: B, seqLen: T, heads: H, kvHeads: KV, headSize: hs } = sh;
      if (H % KV !== 0) throw new Error(`causalAttention: ${H} heads are not a multiple of ${KV} kv heads`);
      if (q.length !== B * T * H * hs || k.length !== B * T * KV * hs || v.length !== k.length) {
        throw new Error(`causalAttention: q/k/v have ${q.length}/${k.length}/${v.length} floats, expected ${B * T * H * hs}/${B * T * KV * hs}/${B * T * KV * hs}`);
      }
      const kvMul = H / KV;
      const s = await session('causal-attention', buildCausalAttentionModel);
      let mask = masks.get(`${T}x${kvMul}`);
      if (!mask) masks.set(`${T}x${kvMul}`, (mask = causalMask(T, kvMul)));
      const i64 = (xs: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs.map(BigInt)), [xs.length]);
      const out = await s.run({
        Q: new ort.Tensor('float32', q, [B, T, H, hs]),
        K: new ort.Tensor('float32', k, [B, T, KV, hs]),
        V: new ort.Tensor('float32', v, [B, T, KV, hs]),
        mask: new ort.Tensor('float32', mask, [kvMul * T, T]),
        scale: new ort.Tensor('float32', Float32Array.of(1 / Math.sqrt(hs)), [1]),
        groupShape: i64([B, KV, kvMul * T, hs]),
        headShape: i64([B, H, T, hs]),
      });
      return out.O!.data as Float32Array;
    },
    async affineTopK(a, b, bias, k, keepProduct) {
      const { m, n } = gemmDims(a, b, { bias });
      if (!Number.isInteger(k) || k < 1 || k > n) throw new Error(`affineTopK: k must be an integer in [1, ${n}], got ${k}`);
      const s = await session('affine-topk', buildAffineTopKModel);
      const feeds = {
        A: new ort.Tensor('float32', a.data, a.shape as number[]),
        B: new ort.Tensor('float32', b.data, b.shape as number[]),
        bias: new ort.Tensor('float32', bias.data, [1, n]),
        K: new ort.Tensor('int64', BigInt64Array.of(BigInt(k)), [1]),
      };
      const out = await s.run(feeds, keepProduct ? ['P', 'V', 'I'] : ['V', 'I']);
      const idx64 = out.I!.data as BigInt64Array;
      const indices = new Int32Array(idx64.length);
      for (let i = 0; i < idx64.length; i++) indices[i] = Number(idx64[i]!);
      return { values: out.V!.data as Float32Array, indices, product: keepProduct ? { data: out.P!.data as Float32Array, shape: [m, n] } : null };
    },
  };
}

/** Optional accelerator: @tensorflow/tfjs-node, if it can be required. Returns null when absent. */
export function tryCreateTfjsNodeEngine(): GemmEngine | null {
  let tf: any;
  try {
    tf = createRequire(import.meta.url)('@tensorflow/tfjs-node');
  } catch {
    return null;
  }
  return {
    name: 'tfjs-node',
    async gemm(a, b, opts = {}) {
      const { m, n } = gemmDims(a, b, opts);
      const result = tf.tidy(() => {
        let r = tf.matMul(tf.tensor2d(a.data, a.shape), tf.tensor2d(b.data, b.shape), !!opts.transA, !!opts.transB);
        if ((opts.alpha ?? 1) !== 1) r = r.mul(opts.alpha);
        if (opts.c && (opts.beta ?? 0) !== 0) r = r.add(tf.tensor2d(opts.c.data, [m, n]).mul(opts.beta));
        if (opts.bias) r = r.add(tf.tensor1d(opts.bias.data));
        return r;
      });
      const data = (await result.data()) as Float32Array;
      result.dispose();
      if (opts.out) {
        opts.out.data.set(data);
        return opts.out;
      }
      return { data, shape: [m, n] };
    },
  };
}

let defaultEnginePromise: Promise<GemmEngine> | null = null;

/**
 * The engine used when none is given: onnxruntime, unless tfjs-node is installed and measured faster on a
 * 1024×512×1024 product. `SAELAB_GEMM=js|onnxruntime|tfjs-node` forces a choice.
 */
export function defaultEngine(): Promise<GemmEngine> {
  defaultEnginePromise ??= chooseEngine();
  return defaultEnginePromise;
}

async function chooseEngine(): Promise<GemmEngine> {
  const forced = process.env.SAELAB_GEMM;
  if (forced === 'js') return jsEngine;
  const ortEngine = createOrtEngine();
  if (forced === 'onnxruntime') return ortEngine;
  const tfEngine = tryCreateTfjsNodeEngine();
  if (forced === 'tfjs-node') {
    if (!tfEngine) throw new Error('SAELAB_GEMM=tfjs-node but @tensorflow/tfjs-node cannot be loaded');
    return tfEngine;
  }
  if (!tfEngine) return ortEngine;
  const [ortMs, tfMs] = [await timeEngine(ortEngine), await timeEngine(tfEngine)];
  return tfMs < ortMs ? tfEngine : ortEngine;
}

async function timeEngine(e: GemmEngine): Promise<number> {
  const a = zeros([1024, 512]);
  const b = zeros([512, 1024]);
  await e.gemm(a, b);
  const t0 = performance.now();
  for (let i = 0; i < 3; i++) await e.gemm(a, b);
  return performance.now() - t0;
}
