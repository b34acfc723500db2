import { defineConfig } from 'tsup';

// The server runs from dist/ (`npm start`): one ESM bundle per entry point; dependencies stay in
// node_modules, except the generated contract (`@roster/openapi/contract`): it is TypeScript source
// (generated/roster.ts of the openapi workspace), which Node cannot load, so it is bundled in.
export default defineConfig({
  entry: { main: 'src/main.ts', migrate: 'src/migrate-cli.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  clean: true,
  splitting: true,
  dts: false,
  noExternal: ['@roster/openapi'],
});
