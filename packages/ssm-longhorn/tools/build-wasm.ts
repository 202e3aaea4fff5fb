/**
 * Assembles packages/ssm-longhorn/src/wasm/*.wat into the committed *-wasm.ts modules (the bytes, base64).
 * Run after editing a .wat: `npx tsx packages/ssm-longhorn/tools/build-wasm.ts` (`--check`: exit 1 if stale).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WASM_MODULES, assembleWat, wasmModuleSource } from './assemble.js';

const dir = fileURLToPath(new URL('../src/wasm/', import.meta.url));
let stale = false;
for (const m of WASM_MODULES) {
  const bytes = await assembleWat(m.wat, readFileSync(dir + m.wat, 'utf8'));
  const text = wasmModuleSource(bytes, m.wat, m.exportName);
  if (process.argv.includes('--check')) {
    const same = readFileSync(dir + m.ts, 'utf8') === text;
    console.log(`${m.ts}: ${same ? 'up to date' : 'stale (run tools/build-wasm.ts)'}`);
    stale ||= !same;
  } else {
    writeFileSync(dir + m.ts, text);
    console.log(`wrote ${m.ts} (${bytes.length} bytes of WebAssembly)`);
  }
}
process.exit(stale ? 1 : 0);
