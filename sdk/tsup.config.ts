import { defineConfig } from 'tsup';

// Entries must match the "exports" map of package.json.
export default defineConfig({
  entry: { index: 'src/index.ts', express: 'src/express.ts' },
  // node:crypto, in the Node-only express entry.
  external: [/^node:/],
  removeNodeProtocol: false,
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  platform: 'neutral',
});
