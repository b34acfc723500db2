import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    setupFiles: ['test/contract-setup.ts'],
    // Each test file gets its own database (PGlite in memory, or a fresh PostgreSQL database when
    // DATABASE_URL is set); an embedded instance is large, so keep the number in flight modest.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
