import { describe, expect, it } from 'vitest';
import { Rng } from '@saelab/core';
import { type FloatArray, type ScanShape, type Transition, SIMD_TRANSITIONS, TRANSITIONS, hasALog, scanBackward, scanForward, scanStep } from '../src/scan.js';
import { maxRelErr, randomInputs, reference } from './scan-reference.js';

describe.each(TRANSITIONS)('scan %s', (kind) => {
  it('float32 and float64 kernels match the float64 reference loop (odd L, chunk not dividing L)', () => {
    const sh: ScanShape = { batch: 3, seqLen: 37, dInner: 5, dState: 6 };
    const inp64 = randomInputs(sh, 1, Float64Array, kind);
    const ref = reference(kind, sh, inp64);
    const y64 = scanForward(kind, sh, inp64, { chunk: 5 }).y;
    expect(maxRelErr(y64, ref)).toBeLessThan(1e-12);
    const inp32 = randomInputs(sh, 1, Float32Array, kind);
    const y32 = scanForward(kind, sh, inp32, { chunk: 5 }).y;
    expect(y32).toBeInstanceOf(Float32Array);
    expect(maxRelErr(y32, ref)).toBeLessThan(1e-4);
  });

  it('backward matches central finite differences for every input and parameter', () => {
    const sh: ScanShape = { batch: 2, seqLen: 7, dInner: 3, dState: 4 };
    const inp = randomInputs(sh, 2, Float64Array, kind);
    const rng = new Rng(3);
    const w = Float64Array.from({ length: 2 * 7 * 3 }, () => rng.normal());
    const loss = () => {
      const { y } = scanForward(kind, sh, inp, { chunk: 3 });
      let s = 0;
      for (let i = 0; i < y.length; i++) s += y[i]! * w[i]!;
      return s;
    };
    const { saved } = scanForward(kind, sh, inp, { chunk: 3 });
    const g = scanBackward(inp, saved, w);
    const pairs: [string, FloatArray, FloatArray][] = [
      ['x', inp.x, g.gx],
      ['z', inp.z, g.gz],
      ['k', inp.k, g.gk],
      ['q', inp.q, g.gq],
    ];
    if (hasALog(kind)) pairs.push(['aLog', inp.aLog!, g.gALog!]);
    else expect(g.gALog).toBeUndefined();
    if (kind === 'gated-deltanet') pairs.push(['zA', inp.zA!, g.gzA!]);
    else expect(g.gzA).toBeUndefined();
    const h = 1e-6;
    for (const [name, arr, grad] of pairs) {
      const fd = new Float64Array(arr.length);
      for (let i = 0; i < arr.length; i++) {
        const v = arr[i]!;
        arr[i] = v + h;
        const up = loss();
        arr[i] = v - h;
        const down = loss();
        arr[i] = v;
        fd[i] = (up - down) / (2 * h);
      }
      expect(maxRelErr(grad, fd), `∂/∂${name}`).toBeLessThan(1e-6);
    }
  });

  it('gradients do not depend on the checkpoint interval', () => {
    const sh: ScanShape = { batch: 2, seqLen: 11, dInner: 4, dState: 3 };
    const inp = randomInputs(sh, 4, Float64Array, kind);
    const gy = randomInputs(sh, 5, Float64Array).x;
    const grads = [1, 4, 11, 50].map((chunk) => scanBackward(inp, scanForward(kind, sh, inp, { chunk }).saved, gy));
    for (const g of grads.slice(1)) {
      expect(maxRelErr(g.gx, grads[0]!.gx)).toBeLessThan(1e-12);
      expect(maxRelErr(g.gk, grads[0]!.gk)).toBeLessThan(1e-12);
      expect(maxRelErr(g.gz, grads[0]!.gz)).toBeLessThan(1e-12);
      if (hasALog(kind)) expect(maxRelErr(g.gALog!, grads[0]!.gALog!)).toBeLessThan(1e-12);
    }
  });

  it('the recurrent step reproduces the sequence scan token by token', () => {
    const sh: ScanShape = { batch: 2, seqLen: 9, dInner: 3, dState: 5 };
    const inp = randomInputs(sh, 6, Float32Array, kind);
    const { y } = scanForward(kind, sh, inp);
    const { batch: B, seqLen: L, dInner: d, dState: n } = sh;
    const S = new Float64Array(B * d * n);
    for (let t = 0; t < L; t++) {
      const rows = (arr: FloatArray, w: number) => {
        const o = new Float32Array(B * w);
        for (let b = 0; b < B; b++) o.set(arr.subarray((b * L + t) * w, (b * L + t + 1) * w), b * w);
        return o;
      };
      const yt = scanStep(kind, { batch: B, dInner: d, dState: n }, S, {
        x: rows(inp.x, d), z: rows(inp.z, d), k: rows(inp.k, n), q: rows(inp.q, n), aLog: inp.aLog, zA: inp.zA && rows(inp.zA, d),
      });
      for (let b = 0; b < B; b++) for (let i = 0; i < d; i++) expect(yt[b * d + i]).toBe(y[(b * L + t) * d + i]);
    }
  });
});

describe('scan input checks', () => {
  const sh: ScanShape = { batch: 1, seqLen: 4, dInner: 2, dState: 3 };
  it('rejects wrong lengths, unknown transitions and a missing A_log with specific errors', () => {
    const inp = randomInputs(sh, 7, Float32Array);
    expect(() => scanForward('longhorn-diag', sh, { ...inp, k: new Float32Array(5) })).toThrow(/k has 5 elements/);
    expect(() => scanForward('nope' as Transition, sh, inp)).toThrow(/unknown transition 'nope'/);
    expect(() => scanForward('mamba', sh, { ...inp, aLog: undefined })).toThrow(/aLog is required/);
    expect(() => scanForward('longhorn-diag', sh, inp, { chunk: 0 })).toThrow(/chunk/);
  });

  it('Mamba2 / Gated DeltaNet reject a [d, n] A_log and a missing zA with specific errors', () => {
    const inp = randomInputs(sh, 7, Float32Array, 'gated-deltanet');
    expect(() => scanForward('mamba2', sh, { ...inp, aLog: new Float32Array(6) })).toThrow(/aLog has 6 elements, expected \[d\] = 2/);
    expect(() => scanForward('gated-deltanet', sh, { ...inp, zA: undefined })).toThrow(/zA is required/);
    expect(() => scanForward('deltanet', sh, { ...inp, aLog: undefined, zA: undefined })).not.toThrow();
  });

  it('the delta rules stay bounded for huge keys and long sequences (normalised keys: (I − βk̂k̂ᵀ) is a contraction)', () => {
    const big: ScanShape = { batch: 1, seqLen: 500, dInner: 2, dState: 4 };
    for (const kind of ['deltanet', 'gated-deltanet'] as const) {
      const inp = randomInputs(big, 8, Float32Array, kind);
      for (let i = 0; i < inp.k.length; i++) inp.k[i]! *= 100;
      const { y } = scanForward(kind, big, inp);
      // |y_i| ≤ ‖s_i‖ ‖q̂‖ and ‖s_i‖ ≤ Σ_t β|x_t| ≤ Σ|x| — a bound the kernel does not compute
      let bound = 0;
      for (let t = 0; t < big.seqLen; t++) bound = Math.max(bound, Math.abs(inp.x[t * 2]!), Math.abs(inp.x[t * 2 + 1]!));
      expect(y.every((v) => Number.isFinite(v) && Math.abs(v) <= bound * big.seqLen)).toBe(true);
    }
  });

  it('Longhorn stays bounded for huge keys (every transition factor lies in (0, 1])', () => {
    const big: ScanShape = { batch: 1, seqLen: 500, dInner: 2, dState: 4 };
    const inp = randomInputs(big, 8, Float32Array);
    for (let i = 0; i < inp.k.length; i++) inp.k[i]! *= 100;
    for (const kind of ['longhorn-diag', 'longhorn-exact'] as const) {
      const { y } = scanForward(kind, big, inp);
      expect(y.every((v) => Number.isFinite(v))).toBe(true);
    }
  });
});

describe('parallel scan over the batch (worker threads)', () => {
  it.each(SIMD_TRANSITIONS)('%s: same outputs and gradients as the single-threaded kernel', async (kind) => {
    const { scanForwardParallel, scanBackwardParallel, setScanThreads } = await import('../src/scan-pool.js');
    setScanThreads(3);
    try {
      const sh: ScanShape = { batch: 5, seqLen: 13, dInner: 4, dState: 3 };
      const inp = randomInputs(sh, 11, Float32Array);
      const gy = randomInputs(sh, 12, Float32Array).x;
      const seq = scanForward(kind, sh, inp, { chunk: 4 });
      const par = await scanForwardParallel(kind, sh, inp, { chunk: 4 });
      expect(par.y).toEqual(seq.y);
      expect(par.saved.checkpoints).toEqual(seq.saved.checkpoints);
      const gs = scanBackward(inp, seq.saved, gy);
      const gp = await scanBackwardParallel(inp, par.saved, gy);
      expect(gp.gx).toEqual(gs.gx);
      expect(gp.gz).toEqual(gs.gz);
      expect(gp.gk).toEqual(gs.gk);
      expect(gp.gq).toEqual(gs.gq);
      if (kind === 'mamba') expect(maxRelErr(gp.gALog!, gs.gALog!)).toBeLessThan(1e-5);
    } finally {
      setScanThreads(null);
    }
  });
});
