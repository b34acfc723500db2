/**
 * The management API contract as TypeScript: types (and enum value lists) generated from
 * openapi/roster.yaml by `npm run generate`. Handlers and serializers are typed against these, so
 * a response that drifts from the document does not compile.
 */
export type { components, operations, paths } from '@roster/openapi/contract';
export { errorCodeValues, eventTypeValues, providerValues } from '@roster/openapi/contract';

import type { components } from '@roster/openapi/contract';

export type Schemas = components['schemas'];
export type ErrorCode = Schemas['ErrorCode'];
