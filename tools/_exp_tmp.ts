import { trainSae } from '../packages/harness/src/train.js';
const [arch, lr, sp, extra] = process.argv.slice(2);
const archConfig = extra ? JSON.parse(extra) : undefined;
const data = process.env.DATA!;
const t0 = Date.now();
const r = await trainSae({ arch, activations: data, out: `/tmp/i11/exp/${arch}-${lr}-${sp}-${Date.now()}`, tokens: 1_000_000, batch: 1024, lr: Number(lr), ...(arch.includes('topk') ? { k: Number(sp) } : { sparsity: Number(sp) }), evalRows: 16384, quiet: true, archConfig, lrSchedule: 'linear-decay', lrWarmup: 49, sparsityWarmup: 98, bDecInit: 'geometric-median', checkpointEvery: 100000 });
const m = r.metrics as any;
console.log(`${arch} lr ${lr} sp ${sp} ${extra ?? ''}: L0 ${m.l0.mean.toFixed(2)} FVU ${m.fvu.toFixed(4)} deadTrainWin ${r.deadFractionTrainWindow.toFixed(3)} deadHeld ${m.deadFraction?.toFixed?.(3)} ${((Date.now()-t0)/1000).toFixed(0)}s ${r.tokensPerSecond.toFixed(0)} tok/s`);
