import { Rng, defaultEngine, createOrtEngine, zeros } from '@saelab/core';
import ort from 'onnxruntime-node';
const e = createOrtEngine();
const a = zeros([2048, 64]); const b = zeros([64, 256]);
new Rng(1).fillNormal(a.data); new Rng(2).fillNormal(b.data);
await e.gemm(a, b);
let t = performance.now(); for (let i = 0; i < 50; i++) await e.gemm(a, b); console.log('ort ms/call', (performance.now() - t) / 50);
const js = (await import('@saelab/core')).jsEngine;
t = performance.now(); for (let i = 0; i < 10; i++) await js.gemm(a, b); console.log('js ms/call', (performance.now() - t) / 10);
