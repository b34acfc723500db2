/**
 * The management API contract as TypeScript, generated from openapi/roster.yaml into the
 * `@roster/openapi` workspace (`npm run generate`). The build bundles these types into the
 * package's declarations, so the published SDK does not depend on `@roster/openapi`.
 */
export type { components, paths } from '@roster/openapi/contract';
