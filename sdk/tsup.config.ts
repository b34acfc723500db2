import { defineConfig } from 'tsup';

// Entries must match the "exports" map of package.json.
export default defineConfig({
  entry: { index: 'src/index.ts', express: 'src/express.ts' },
  // node:crypto, in the Node-only express entry.
  external: [/^node:/],
  // openapi-fetch is bundled: required from the CommonJS build, esbuild's Node-mode interop hands
  // `createClient` the module object instead of its default export (TypeError at createRoster).
  // Its types still come from the dependency.
  noExternal: ['openapi-fetch'],
  removeNodeProtocol: false,
  format: ['esm', 'cjs'],
  // The contract types come from the private `@roster/openapi` workspace: inline them into the
  // declarations so the published package stands alone.
  // The declaration bundler would keep a package import external: map it to the file instead.
  dts: {
    compilerOptions: {
      paths: {
        '@roster/openapi/contract': ['../openapi/generated/roster.ts'],
        '@roster/openapi/digest': ['../openapi/digest.ts'],
      },
    },
  },
  sourcemap: true,
  clean: true,
  target: 'es2022',
  platform: 'neutral',
});
