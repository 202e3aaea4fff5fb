import { loadCorpora, createTokenizer, Llama2cModel } from '/work/main/packages/activations/src/index.ts';
const d = '/work/shared/models/stories260K';
const docs = loadCorpora('sotu+brown', 'train');
const tok = createTokenizer(`llama2c:${d}/tok512.bin`, 512);
let t0 = performance.now(); let n = 0; let chars = 0;
for (const doc of docs.slice(0, 40)) { n += tok.encode(doc.text).length; chars += doc.text.length; }
let s = (performance.now() - t0) / 1000;
console.log(`tokenize: ${n} tokens from ${chars} chars in ${s.toFixed(2)}s = ${(n / s).toFixed(0)} tok/s; total corpus chars ${docs.reduce((a, d) => a + d.text.length, 0)}`);
const m = Llama2cModel.load(`${d}/stories260K.bin`);
const B = 16, T = 128; const ids = new Int32Array(B * T).fill(5);
await m.run(ids, B, T, { read: ['blocks.2.hook_resid_post'], skipLogits: true });
t0 = performance.now();
for (let i = 0; i < 5; i++) await m.run(ids, B, T, { read: ['blocks.2.hook_resid_post'], skipLogits: true });
s = (performance.now() - t0) / 1000;
console.log(`forward to layer 2: ${(5 * B * T / s).toFixed(0)} tok/s`);
t0 = performance.now();
for (let i = 0; i < 3; i++) await m.run(ids, B, T);
s = (performance.now() - t0) / 1000;
console.log(`full forward + logits: ${(3 * B * T / s).toFixed(0)} tok/s`);
