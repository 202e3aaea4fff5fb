import { LonghornLM, mqarStream } from '../src/index.js';
const lm = LonghornLM.create({ vocabSize: 256, dModel: 64, nLayers: 2, dState: 16 }, 0);
const data = mqarStream({ vocabSize: 256, seqLen: 64, numKvPairs: 4 }, 32, 0);
for (let it = 0; it < 30; it++) {
  const b = data(it);
  const t0 = performance.now();
  await lm.lossAndGrad(b.tokens, b.targets, b.batch, b.seqLen);
  if (it % 5 === 0) console.log(it, (performance.now() - t0).toFixed(0), 'ms');
}
