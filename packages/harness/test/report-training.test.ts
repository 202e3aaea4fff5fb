/** The report's frontier slope (used to compare the tuning stage's budget check at one L0). */
import { describe, expect, it } from 'vitest';
import type { PointResult } from '../src/sweep/point.js';
import { frontierSlope } from '../src/sweep/report-training.js';

// Points on FVU = 0.5 · L0^−1.3 (two seeds per target, L0 jittered along the curve) and one other architecture.
const pt = (arch: string, target: number, l0: number, fvu: number) => ({ arch, target, metrics: { l0: { mean: l0 }, fvu } }) as unknown as PointResult;
const curve = (l0: number) => 0.5 * Math.pow(l0, -1.3);
const points = [4, 8, 16].flatMap((t) => [pt('a', t, t * 0.9, curve(t * 0.9)), pt('a', t, t * 1.1, curve(t * 1.1))]).concat([pt('b', 4, 4, 0.1), pt('b', 8, 8, 0.1)]);

describe('frontierSlope', () => {
  it('recovers the power law between the bracketing targets, at the ends, and per architecture', () => {
    expect(frontierSlope(points, 'a', 6)).toBeCloseTo(-1.3, 10);
    expect(frontierSlope(points, 'a', 2)).toBeCloseTo(-1.3, 10);
    expect(frontierSlope(points, 'a', 40)).toBeCloseTo(-1.3, 10);
    expect(frontierSlope(points, 'b', 6)).toBeCloseTo(0, 10);
    expect(frontierSlope(points, 'c', 6)).toBeNull();
  });
});
