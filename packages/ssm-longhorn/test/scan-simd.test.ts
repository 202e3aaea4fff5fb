import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type ScanShape, SIMD_TRANSITIONS, scanBackward, scanForward } from '../src/scan.js';
import { simdScanAvailable } from '../src/scan-simd.js';
import { KERNELS_WASM_BASE64 } from '../src/wasm/kernels-wasm.js';
import { assembleWat } from '@saelab/core/wasm-build';
import { maxRelErr, randomInputs, reference } from './scan-reference.js';

/**
 * The WebAssembly SIMD scan is the training path for float32 Longhorn scans; the float64 TypeScript kernel (checked
 * against finite differences in scan.test.ts) is the reference it must reproduce to float32 accuracy.
 */
describe.each(SIMD_TRANSITIONS)('SIMD scan %s', (kind) => {
  it('is available and chosen by default for float32 inputs with d_inner % 4 = 0', () => {
    expect(simdScanAvailable(kind, 8)).toBe(true);
    const sh: ScanShape = { batch: 1, seqLen: 3, dInner: 8, dState: 4 };
    expect(scanForward(kind, sh, randomInputs(sh, 1, Float32Array)).saved.impl).toBe('simd');
    expect(scanForward(kind, sh, randomInputs(sh, 1, Float64Array)).saved.impl).toBe('js');
    expect(scanForward(kind, { ...sh, dInner: 6 }, randomInputs({ ...sh, dInner: 6 }, 1, Float32Array)).saved.impl).toBe('js');
  });

  it('forward matches the float64 reference loop (odd L, chunk not dividing L)', () => {
    const sh: ScanShape = { batch: 3, seqLen: 37, dInner: 12, dState: 6 };
    const ref = reference(kind, sh, randomInputs(sh, 1, Float64Array));
    const { y, saved } = scanForward(kind, sh, randomInputs(sh, 1, Float32Array), { chunk: 5, impl: 'simd' });
    expect(saved.impl).toBe('simd');
    expect(maxRelErr(y, ref)).toBeLessThan(1e-5);
  });

  it('backward matches the float64 kernel for every input', () => {
    const sh: ScanShape = { batch: 2, seqLen: 29, dInner: 8, dState: 5 };
    const inp32 = randomInputs(sh, 2, Float32Array);
    const inp64 = randomInputs(sh, 2, Float64Array);
    const gy32 = randomInputs(sh, 3, Float32Array).x;
    const gy64 = randomInputs(sh, 3, Float64Array).x;
    const g = scanBackward(inp32, scanForward(kind, sh, inp32, { chunk: 4, impl: 'simd' }).saved, gy32);
    const r = scanBackward(inp64, scanForward(kind, sh, inp64, { chunk: 4, impl: 'js' }).saved, gy64);
    for (const name of ['gx', 'gz', 'gk', 'gq'] as const) {
      expect(g[name]).toBeInstanceOf(Float32Array);
      expect(maxRelErr(g[name], r[name]), name).toBeLessThan(2e-5);
    }
    if (kind === 'mamba') expect(maxRelErr(g.gALog!, r.gALog!)).toBeLessThan(2e-5);
    else expect(g.gALog).toBeUndefined();
  });

  it('gradients do not depend on the checkpoint interval', () => {
    const sh: ScanShape = { batch: 2, seqLen: 11, dInner: 4, dState: 3 };
    const inp = randomInputs(sh, 4, Float32Array);
    const gy = randomInputs(sh, 5, Float32Array).x;
    const grads = [1, 4, 11, 50].map((chunk) => scanBackward(inp, scanForward(kind, sh, inp, { chunk, impl: 'simd' }).saved, gy));
    for (const g of grads.slice(1)) {
      // Same arithmetic in the same order whatever the segmentation: bit-identical.
      expect(g.gx).toEqual(grads[0]!.gx);
      expect(g.gk).toEqual(grads[0]!.gk);
      expect(g.gz).toEqual(grads[0]!.gz);
    }
  });

  it('saturating gates (|z| up to 100) and large keys stay finite and match the reference', () => {
    const sh: ScanShape = { batch: 1, seqLen: 40, dInner: 8, dState: 4 };
    const inp64 = randomInputs(sh, 6, Float64Array);
    for (let i = 0; i < inp64.z.length; i++) inp64.z[i]! *= i % 3 === 0 ? 100 : 20;
    for (let i = 0; i < inp64.k.length; i++) inp64.k[i]! *= 5;
    const inp32 = { x: Float32Array.from(inp64.x), z: Float32Array.from(inp64.z), k: Float32Array.from(inp64.k), q: Float32Array.from(inp64.q), aLog: inp64.aLog };
    const { y, saved } = scanForward(kind, sh, inp32, { impl: 'simd' });
    expect(y.every(Number.isFinite)).toBe(true);
    expect(maxRelErr(y, reference(kind, sh, inp64))).toBeLessThan(1e-4);
    const g = scanBackward(inp32, saved, randomInputs(sh, 7, Float32Array).x);
    for (const a of [g.gx, g.gz, g.gk, g.gq, ...(g.gALog ? [g.gALog] : [])]) expect(a.every(Number.isFinite)).toBe(true);
  });
});

describe.each(['longhorn-diag', 'longhorn-exact'] as const)('SIMD scan %s: the β gate', (kind) => {
  it('∂z_β stays accurate element by element as β → 1 (z up to 15), where ∂ε/∂z ≈ e^{−z}ε² is tiny', () => {
    const sh: ScanShape = { batch: 1, seqLen: 20, dInner: 8, dState: 4 };
    const inp64 = randomInputs(sh, 8, Float64Array);
    for (let i = 0; i < inp64.z.length; i++) inp64.z[i] = 5 + (10 * i) / inp64.z.length;
    const inp32 = { x: Float32Array.from(inp64.x), z: Float32Array.from(inp64.z), k: Float32Array.from(inp64.k), q: Float32Array.from(inp64.q) };
    const gy64 = randomInputs(sh, 9, Float64Array).x;
    const r = scanBackward(inp64, scanForward(kind, sh, inp64, { impl: 'js' }).saved, gy64);
    const g = scanBackward(inp32, scanForward(kind, sh, inp32, { impl: 'simd' }).saved, Float32Array.from(gy64));
    let worst = 0;
    for (let i = 0; i < r.gz.length; i++) if (Math.abs(r.gz[i]!) > 1e-30) worst = Math.max(worst, Math.abs(g.gz[i]! - r.gz[i]!) / Math.abs(r.gz[i]!));
    // Element-wise, so cancellation in any one entry shows (the earlier ε (1 − (1+‖k‖²) ε) form was off by up to 69% on this input).
    expect(worst).toBeLessThan(1e-2);
  });
});

describe('SIMD scan: choice and build', () => {
  it("an explicit impl: 'simd' that cannot run says why", () => {
    const sh: ScanShape = { batch: 1, seqLen: 3, dInner: 6, dState: 4 };
    expect(() => scanForward('longhorn-diag', sh, randomInputs(sh, 1, Float32Array), { impl: 'simd' })).toThrow(/d_inner % 4 = 0/);
    const sh8 = { ...sh, dInner: 8 };
    expect(() => scanForward('longhorn-diag', sh8, randomInputs(sh8, 1, Float64Array), { impl: 'simd' })).toThrow(/float32/);
  });

  it('kernels-wasm.ts is the assembly of kernels.wat (run tools/build-wasm.ts after editing the .wat)', async () => {
    const wat = readFileSync(new URL('../src/wasm/kernels.wat', import.meta.url), 'utf8');
    expect(Buffer.from(await assembleWat('kernels.wat', wat)).toString('base64')).toBe(KERNELS_WASM_BASE64);
  });
});
