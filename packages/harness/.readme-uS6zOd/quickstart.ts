import { Rng, SaeTrainer, defaultEngine, recipeOptions, syntheticSparseData } from '@saelab/core';
import { jumpRelu } from '@saelab/sae-jumprelu';

const { x } = syntheticSparseData({ rows: 4096, dIn: 64, features: 128, meanActive: 4, seed: 0 });
const cfg = jumpRelu.configSchema.parse({ dIn: 64, dSae: 256 });
const params = jumpRelu.init(cfg, new Rng(0));
const ctx = { engine: await defaultEngine() };
const trainer = new SaeTrainer(jumpRelu, cfg, params, recipeOptions(jumpRelu, 200, 1e-2), ctx);
for (let step = 0; step < 200; step++) await trainer.trainStep(x);
const latents = await jumpRelu.encode(params, x, cfg, ctx); // [4096, 256], mostly zeros

const nz = latents.data.filter((v) => v !== 0).length / latents.shape[0]!;
console.log(JSON.stringify({ shape: latents.shape, l0: nz }));
