/** The launchers' task plan (which calibration families, in which order; one task per point) and their argument splitting. */
import { describe, expect, it } from 'vitest';
import { expandGrid, parseSweepConfig } from '../src/sweep/config.js';
import { planStages, shellWords } from '../src/sweep/launchers/stages.js';

const config = parseSweepConfig({
  name: 'plan',
  activations: '/nonexistent/acts.npy',
  grid: { architectures: ['relu', 'topk', 'jumprelu'], l0Targets: [16, 4], seeds: [0, 1], expansions: [4, 8], sparsity: { relu: [0.5] } },
  data: { contextLength: 16, trainTokens: 1000, evalTokens: 100 },
  training: { tokens: 1000, batch: 100 },
});
const grid = expandGrid(config);

describe('planStages', () => {
  it('calibrates each λ family (architecture × expansion) in one task, targets ascending, one id per target', () => {
    const plan = planStages(grid, grid);
    expect(plan.calibration).toEqual([
      ['relu-l0_4-x4-s0', 'relu-l0_16-x4-s0'],
      ['relu-l0_4-x8-s0', 'relu-l0_16-x8-s0'],
      ['jumprelu-l0_4-x4-s0', 'jumprelu-l0_16-x4-s0'],
      ['jumprelu-l0_4-x8-s0', 'jumprelu-l0_16-x8-s0'],
    ]);
    expect(plan.points).toEqual(grid.map((p) => p.id));
    expect(plan.points).toContain('relu-lam_0.5-x4-s1'); // explicit λ: a point, never calibrated
  });

  it('includes a family only when one of its pending points needs calibration, and then all its targets', () => {
    const pending = grid.filter((p) => ['topk-l0_4-x4-s1', 'relu-lam_0.5-x8-s0', 'jumprelu-l0_16-x8-s1'].includes(p.id));
    const plan = planStages(grid, pending);
    expect(plan.calibration).toEqual([['jumprelu-l0_4-x8-s0', 'jumprelu-l0_16-x8-s0']]);
    expect(plan.points).toEqual(['relu-lam_0.5-x8-s0', 'topk-l0_4-x4-s1', 'jumprelu-l0_16-x8-s1']);
    expect(planStages(grid, pending.filter((p) => p.arch === 'topk')).calibration).toEqual([]);
  });

  it('with one-pass L0 targeting (calibration.method controller) there is no calibration stage', () => {
    const plan = planStages(grid, grid, 'controller');
    expect(plan.calibration).toEqual([]);
    expect(plan.points).toEqual(grid.map((p) => p.id));
  });
});

describe('shellWords', () => {
  it('splits like a shell: quotes, escapes, repeated spaces', () => {
    expect(shellWords('  --partition=cpu   --time "01:00:00" --comment=\'a b\' x\\ y ""')).toEqual(['--partition=cpu', '--time', '01:00:00', '--comment=a b', 'x y', '']);
    expect(shellWords('')).toEqual([]);
    expect(() => shellWords('--comment="open')).toThrow(/unbalanced "/);
  });
});
