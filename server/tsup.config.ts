import { defineConfig } from 'tsup';

// The server runs from dist/ (`npm start`): one ESM bundle per entry point; dependencies stay in
// node_modules. The generated contract (sdk/src/generated) is bundled in, as it is source here.
export default defineConfig({
  entry: { main: 'src/main.ts', migrate: 'src/migrate-cli.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  clean: true,
  splitting: true,
  dts: false,
});
