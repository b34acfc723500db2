import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'] },
    // The machines are shared: on a loaded one openapi-typescript (generated.test.ts) took 11 s
    // while pack.test.ts built the package beside it, past vitest's 5 s default.
    testTimeout: 60_000,
  },
});
