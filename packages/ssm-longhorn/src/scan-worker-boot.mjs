// Worker bootstrap: the package runs from TypeScript sources (main: ./src/index.ts), so register tsx's loader
// in this thread before importing the TypeScript worker module.
import { workerData } from 'node:worker_threads';
const { register } = await import('tsx/esm/api');
register();
await import(workerData.entry);
