import { defineConfig } from 'vitest/config';

// One root config: `npm test` runs every package's tests in one process pool.
// Each package also has its own `test` target (nx run <pkg>:test) that runs only its folder.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
