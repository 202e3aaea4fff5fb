/**
 * Assembles every WebAssembly kernel source of the workspace into the committed TypeScript module beside it (the
 * bytes, base64), so using a package needs no build step and no wabt at run time. Run after editing a .wat:
 * `npx tsx tools/build-wasm.ts` (`--check`: exit 1 if a generated module is stale).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assembleWat, wasmModuleSource } from '@saelab/core/wasm-build';

const MODULES = ['packages/core/src/fast/kernels.wat', 'packages/ssm-longhorn/src/wasm/kernels.wat'];

const root = fileURLToPath(new URL('..', import.meta.url));
let stale = false;
for (const wat of MODULES) {
  const target = `${root}${wat.replace(/\.wat$/, '-wasm.ts')}`;
  const bytes = await assembleWat(basename(wat), readFileSync(root + wat, 'utf8'));
  const text = wasmModuleSource(bytes, wat);
  if (process.argv.includes('--check')) {
    const same = readFileSync(target, 'utf8') === text;
    console.log(`${target}: ${same ? 'up to date' : 'stale (run npx tsx tools/build-wasm.ts)'}`);
    stale ||= !same;
  } else {
    writeFileSync(target, text);
    console.log(`wrote ${target} (${bytes.length} bytes of WebAssembly)`);
  }
}
process.exit(stale ? 1 : 0);
