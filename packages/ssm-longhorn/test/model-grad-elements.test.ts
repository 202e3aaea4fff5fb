/**
 * Per-element central differences on every parameter tensor (issue 14, item 6): the directional checks of
 * model.test.ts test one direction per tensor, which a wrong gradient in a few elements (one conv tap, one gate
 * channel, one RMSNorm gain) could pass. Here each tensor — and each packed block of in_proj ([x; z]) and x_proj
 * ([δ; k; q]) — gets random elements plus its largest-gradient element, each compared with (L(θ+h) − L(θ−h)) / 2h.
 * Float32 forward: the difference quotient carries ~1e-6 / h of rounding noise, hence the absolute floor; the
 * largest-gradient element of every block must clear it by 5× so that no block is checked only against noise.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { Rng, jsEngine, type Params } from '@saelab/core';
import { LonghornLM, nextTokenTargets, parseConfig } from '../src/model.js';
import { TRANSITIONS } from '../src/scan.js';
import { setSimdKernels } from '../src/index.js';

const tiny = (variant: (typeof TRANSITIONS)[number]) =>
  ({ vocabSize: 11, dModel: 8, nLayers: 2, dState: 4, variant, scanChunk: 3, headDim: 4 }) as const;

function jitter(p: Params, seed: number, scale: (name: string) => number): void {
  const rng = new Rng(seed);
  for (const [name, t] of Object.entries(p)) for (let i = 0; i < t.data.length; i++) t.data[i]! += scale(name) * rng.normal();
}

const H = 5e-3;
const ABS_FLOOR = 2e-5;
const REL_TOL = 3e-2;
const RANDOM_PER_BLOCK = 4;

describe.each(TRANSITIONS)('LonghornLM (%s): per-element finite differences', (variant) => {
  it.each([true, false])('random elements and the largest-gradient element of every parameter tensor and packed block (SIMD kernels: %s)', async (simd) => {
    setSimdKernels(simd);
    onTestFinished(() => setSimdKernels(true));
    const cfg = parseConfig(tiny(variant));
    const lm = LonghornLM.create(cfg, 21, jsEngine);
    // Move off the special points of the init (as model.test.ts): Δ near softplus(0), Mamba2's A near ½ (Gated DeltaNet's near 1), and
    // perturbed gates, norms, D and biases.
    for (const [name, t] of Object.entries(lm.params)) {
      if (name.endsWith('dt_proj.bias')) t.data.fill(0);
      if (variant === 'mamba2' && name.endsWith('A_log')) t.data.fill(Math.log(0.5));
      if (variant === 'gated-deltanet' && name.endsWith('A_log')) t.data.fill(0);
    }
    jitter(lm.params, 22, (name) => (/x_proj|dt_|beta_proj|a_proj/.test(name) ? 1 : 0.1));
    const B = 2;
    const L = 7;
    const rng = new Rng(23);
    const tokens = Int32Array.from({ length: B * L }, () => rng.int(11));
    const targets = nextTokenTargets(tokens, B, L);
    const { grads } = await lm.lossAndGrad(tokens, targets, B, L);
    const lossAt = async () => (await lm.lossAndGrad(tokens, targets, B, L)).loss;
    const dInner = cfg.expand * cfg.dModel;
    const blocks = (name: string, rows: number): number[] =>
      name.endsWith('in_proj.weight') ? [dInner, dInner] : name.endsWith('x_proj.weight') ? [cfg.dtRank, cfg.dState, cfg.dState] : [rows];
    let checked = 0;
    for (const [name, p] of Object.entries(lm.params)) {
      const rowLen = p.data.length / p.shape[0]!;
      let row0 = 0;
      for (const rows of blocks(name, p.shape[0]!)) {
        const [from, to] = [row0 * rowLen, (row0 + rows) * rowLen];
        row0 += rows;
        const g = grads[name]!.data;
        let arg = from;
        for (let i = from; i < to; i++) if (Math.abs(g[i]!) > Math.abs(g[arg]!)) arg = i;
        const what = `${name} rows [${from / rowLen}, ${to / rowLen})`;
        expect(Math.abs(g[arg]!), `${what}: largest gradient element below the finite-difference noise`).toBeGreaterThan(5 * ABS_FLOOR);
        const picks = new Set([arg]);
        for (let r = 0; r < RANDOM_PER_BLOCK && picks.size < to - from; r++) picks.add(from + rng.int(to - from));
        for (const i of picks) {
          const v = p.data[i]!;
          p.data[i] = v + H;
          const up = await lossAt();
          p.data[i] = v - H;
          const down = await lossAt();
          p.data[i] = v;
          const fd = (up - down) / (2 * H);
          expect(Math.abs(fd - g[i]!), `${name}[${i}]: fd ${fd} vs analytic ${g[i]}`).toBeLessThan(REL_TOL * Math.abs(g[i]!) + ABS_FLOOR);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(Object.keys(lm.params).length * 2);
  });
});
