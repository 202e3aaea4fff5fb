/**
 * run.c's sampler: argmax at temperature 0, otherwise softmax(logits / T) and either plain multinomial sampling
 * or top-p (nucleus, Holtzman et al. 2019) sampling, driven by run.c's xorshift64* generator so that a given seed
 * draws the same coins as the C program.
 */
const MASK64 = (1n << 64n) - 1n;

export class XorShiftRng {
  private state: bigint;
  constructor(seed: number | bigint) {
    this.state = BigInt(seed) & MASK64;
    if (this.state === 0n) throw new Error('xorshift seed must be non-zero');
  }
  /** run.c random_u32. */
  nextU32(): number {
    let s = this.state;
    s ^= s >> 12n;
    s = (s ^ (s << 25n)) & MASK64;
    s ^= s >> 27n;
    this.state = s;
    return Number(((s * 0x2545f4914f6cdd1dn) & MASK64) >> 32n);
  }
  /** run.c random_f32: in [0, 1) with 24 bits. */
  nextF32(): number {
    return Math.fround((this.nextU32() >>> 8) / 16777216);
  }
}

export interface SamplerOptions {
  temperature: number;
  topp: number;
  seed: number | bigint;
}

export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i; // first maximum wins, as in run.c
  return best;
}

export class Sampler {
  private readonly rng: XorShiftRng;
  constructor(private readonly opts: SamplerOptions) {
    if (!(opts.temperature >= 0)) throw new Error(`temperature must be ≥ 0 (got ${opts.temperature})`);
    this.rng = new XorShiftRng(opts.seed);
  }

  sample(logits: Float32Array): number {
    if (this.opts.temperature === 0) return argmax(logits);
    const n = logits.length;
    const p = new Float32Array(n);
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      p[i] = logits[i]! / this.opts.temperature;
      max = Math.max(max, p[i]!);
    }
    let sum = 0;
    for (let i = 0; i < n; i++) {
      p[i] = Math.exp(p[i]! - max);
      sum += p[i]!;
    }
    for (let i = 0; i < n; i++) p[i] = p[i]! / sum;
    const coin = this.rng.nextF32();
    const { topp } = this.opts;
    return topp <= 0 || topp >= 1 ? sampleMult(p, coin) : sampleTopp(p, topp, coin);
  }
}

function sampleMult(p: Float32Array, coin: number): number {
  let cdf = 0;
  for (let i = 0; i < p.length; i++) {
    cdf = Math.fround(cdf + p[i]!);
    if (coin < cdf) return i;
  }
  return p.length - 1;
}

/** Sample among the smallest set of tokens whose probability exceeds topp (run.c sample_topp). */
function sampleTopp(p: Float32Array, topp: number, coin: number): number {
  const n = p.length;
  const cutoff = Math.fround((1 - topp) / (n - 1)); // tokens below this can never be in the nucleus
  const cand: { i: number; p: number }[] = [];
  for (let i = 0; i < n; i++) if (p[i]! >= cutoff) cand.push({ i, p: p[i]! });
  cand.sort((a, b) => b.p - a.p);
  let cum = 0;
  let last = cand.length - 1;
  for (let j = 0; j < cand.length; j++) {
    cum = Math.fround(cum + cand[j]!.p);
    if (cum > topp) {
      last = j;
      break;
    }
  }
  const r = Math.fround(coin * cum);
  let cdf = 0;
  for (let j = 0; j <= last; j++) {
    cdf = Math.fround(cdf + cand[j]!.p);
    if (r < cdf) return cand[j]!.i;
  }
  return cand[last]!.i;
}
