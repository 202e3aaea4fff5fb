import { LonghornLM, nextTokenTargets } from '@saelab/ssm-longhorn';
for (const [d, nl, V, B, L] of [[64, 2, 256, 8, 64], [64, 2, 256, 16, 128],[64, 1, 256, 16, 128]] as const) {
  const lm = LonghornLM.create({ vocabSize: V, dModel: d, nLayers: nl }, 0);
  const tokens = new Int32Array(B * L).map((_, i) => (i * 7919) % V);
  const t = nextTokenTargets(tokens, B, L);
  await lm.lossAndGrad(tokens, t, B, L);
  const t0 = performance.now();
  for (let i = 0; i < 3; i++) await lm.lossAndGrad(tokens, t, B, L);
  const s = (performance.now() - t0) / 1000;
  console.log({ d, nl, V, B, L, trainTokS: Math.round((3 * B * L) / s) });
}
