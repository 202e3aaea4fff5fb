/** `saelab encode` / `saelab reconstruct`: run an SAE over an activation file, writing a float32 .npy row by row. */
import { NpyRowWriter, defaultEngine, iterateRows } from '@saelab/core';
import { openActivations } from './data.js';
import { loadSae } from './sae-folder.js';

export async function runCodec(kind: 'encode' | 'reconstruct', opts: { sae: string; activations: string; out: string; batch?: number }): Promise<{ rows: number; cols: number }> {
  const sae = await loadSae(opts.sae);
  const data = await openActivations(opts.activations);
  try {
    if (data.d !== sae.cfg.dIn) throw new Error(`${opts.activations} has d = ${data.d} but the SAE's d_in is ${sae.cfg.dIn}`);
    const engine = await defaultEngine();
    const cols = kind === 'encode' ? sae.cfg.dSae : sae.cfg.dIn;
    const writer = await NpyRowWriter.create(opts.out, data.rows, cols);
    try {
      for await (const { data: rows } of iterateRows(data, opts.batch ?? 4096)) {
        const x = { data: rows, shape: [rows.length / data.d, data.d] };
        const f = await sae.arch.encode(sae.params, x, sae.cfg, { engine });
        await writer.append(kind === 'encode' ? f.data : (await sae.arch.decode(sae.params, f, sae.cfg, { engine })).data);
      }
      await writer.close();
    } catch (e) {
      await writer.abort();
      throw e;
    }
    return { rows: data.rows, cols };
  } finally {
    await data.close();
  }
}
