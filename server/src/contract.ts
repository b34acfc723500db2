/**
 * The management API contract as TypeScript: types (and enum value lists) generated from
 * openapi/roster.yaml by `npm run generate`. Handlers and serializers are typed against these, so
 * a response that drifts from the document does not compile.
 */
export type { components, operations, paths } from '../../sdk/src/generated/roster.js';
export { errorCodeValues, eventTypeValues, providerValues } from '../../sdk/src/generated/roster.js';

import type { components } from '../../sdk/src/generated/roster.js';

export type Schemas = components['schemas'];
export type ErrorCode = Schemas['ErrorCode'];
