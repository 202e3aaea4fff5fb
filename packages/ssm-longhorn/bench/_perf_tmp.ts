import { Rng, jsEngine } from '@saelab/core';
import { LonghornLM, mqarAccuracy, mqarBatch, mqarStream, train } from '../src/index.js';
const task = { vocabSize: 24, seqLen: 16, numKvPairs: 2 };
const lm = LonghornLM.create({ vocabSize: 24, dModel: 32, nLayers: Number(process.argv[2] ?? 2), dState: 8 }, 0, jsEngine);
const test = mqarBatch(task, 128, new Rng(99));
const t0 = performance.now();
await train(lm, { lr: 1e-2, totalSteps: 150, warmupSteps: 10 }, { data: mqarStream(task, 32, 1), onStep: async (l) => { if ((l.step + 1) % 25 === 0) console.log(l.step + 1, (await mqarAccuracy(lm, test)).toFixed(3), ((performance.now() - t0) / 1000).toFixed(1)); } });
