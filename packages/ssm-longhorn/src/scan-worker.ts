/** Worker side of the scan pool: runs the same kernels on a contiguous batch slice. */
import { parentPort } from 'node:worker_threads';
import { type ScanImpl, type ScanInputs, type ScanSaved, type ScanShape, type Transition, scanBackward, scanForward } from './scan.js';

export type ScanJob =
  | { op: 'fwd'; kind: Transition; shape: ScanShape; inp: ScanInputs; chunk: number; impl: ScanImpl }
  | { op: 'bwd'; inp: ScanInputs; saved: ScanSaved; gy: Float32Array | Float64Array };

const buffersOf = (o: Record<string, unknown>) =>
  Object.values(o).flatMap((v) => (ArrayBuffer.isView(v) ? [v.buffer as ArrayBuffer] : []));

parentPort!.on('message', (job: ScanJob) => {
  try {
    if (job.op === 'fwd') {
      const { y, saved } = scanForward(job.kind, job.shape, job.inp, { chunk: job.chunk, impl: job.impl });
      parentPort!.postMessage({ y, coef: saved.coef, checkpoints: saved.checkpoints }, [y.buffer, saved.coef.buffer, saved.checkpoints.buffer] as ArrayBuffer[]);
    } else {
      const g = scanBackward(job.inp, job.saved, job.gy);
      parentPort!.postMessage(g, buffersOf(g as unknown as Record<string, unknown>));
    }
  } catch (e) {
    parentPort!.postMessage({ error: (e as Error).message });
  }
});
