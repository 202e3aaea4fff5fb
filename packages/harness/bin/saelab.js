#!/usr/bin/env node
// saelab runs from its TypeScript sources through tsx (no build step needed).
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli.ts');
await main(process.argv);
