/**
 * `@roster/sdk`: typed access to a Roster server.
 *
 * The resource types below are generated from openapi/roster.yaml (the management API contract);
 * they are exported by name, never with `export *`, so the public surface is deliberate.
 */
export type {
  Connection,
  ConnectionCreate,
  ConnectionWithToken,
  components,
  ErrorCode,
  ErrorResponse,
  Organization,
  OrganizationCreate,
  OrganizationList,
  OrganizationUpdate,
  operations,
  Provider,
  paths,
  ScimTokenRotation,
} from './generated/roster.js';
