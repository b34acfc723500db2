/**
 * `@roster/sdk`: typed access to a Roster server.
 *
 * Exports are listed by name (never `export *` from generated code), so the public surface is a
 * deliberate choice; resource types are generated from openapi/roster.yaml.
 */
export {
  type CallOptions,
  createRoster,
  type ListParams,
  type RequestOptions,
  type Roster,
  type RosterOptions,
} from './client.js';
export { snapshotDigest } from './directory.js';
export { RosterError, type RosterErrorCode, type RosterErrorDetail } from './errors.js';
export {
  createEventConsumer,
  type Event,
  type EventConsumerOptions,
  type EventIterateParams,
  type EventList,
  type EventListParams,
  type EventsResource,
  type EventType,
} from './events.js';
export { type Page, PagePromise } from './pagination.js';
export type { ApiKeysResource } from './resources/api-keys.js';
export type {
  AttributeMappingsParams,
  ConnectionParams,
  ConnectionsResource,
  CreateConnectionParams,
  ListConnectionsParams,
  ReleaseDeprovisionGuardParams,
  RoleMappingsParams,
  RotateTokenParams,
  SyncParams,
  UpdateConnectionParams,
} from './resources/connections.js';
export type { GroupParams, GroupsResource, ListGroupsParams } from './resources/groups.js';
export type {
  AddMemberParams,
  ListMembersParams,
  MemberMethods,
  MembershipParams,
  UpdateMemberParams,
} from './resources/members.js';
export type {
  DiffParams,
  OrganizationParams,
  OrganizationsResource,
  SnapshotParams,
  UpdateOrganizationParams,
} from './resources/organizations.js';
export type { CreatePortalLinkParams, PortalLinkMethods } from './resources/portal-links.js';
export type { RoleParams, RolesResource, UpdateRoleParams } from './resources/roles.js';
export type {
  CreateSessionParams,
  ListUserSessionsParams,
  RefreshSessionParams,
  SessionsResource,
} from './resources/sessions.js';
export type { RotateSigningKeyParams, SigningKeysResource } from './resources/signing-keys.js';
export type { ListUsersParams, UsersResource } from './resources/users.js';
export type {
  UpdateWebhookEndpointParams,
  WebhookEndpointParams,
  WebhooksResource,
} from './resources/webhooks.js';
export type { SessionCookieOptions, SessionTokensLike } from './session/cookies.js';
export {
  createRevocationList,
  type RevocationList,
  type RevocationListOptions,
} from './session/revocations.js';
export {
  type AuthenticateResult,
  createSessionVerifier,
  type RevocationCheck,
  type RosterAuth,
  type SessionClaims,
  type SessionResult,
  type SessionVerifier,
  type SessionVerifierOptions,
  type SignedOutReason,
  verifySession,
} from './session/verify.js';
export type { RetryOptions } from './transport.js';
export { RosterWebhookError, type VerifyWebhookOptions, verifyWebhook } from './webhooks.js';

import type { components } from './contract.js';

type Schemas = components['schemas'];
export type Organization = Schemas['Organization'];
export type OrganizationCreate = Schemas['OrganizationCreate'];
export type OrganizationUpdate = Schemas['OrganizationUpdate'];
export type Membership = Schemas['Membership'];
export type MembershipUser = Schemas['MembershipUser'];
export type MembershipStatus = Schemas['MembershipStatus'];
export type MembershipExplanation = Schemas['MembershipExplanation'];
export type Role = Schemas['Role'];
export type Connection = Schemas['Connection'];
export type ConnectionWithToken = Schemas['ConnectionWithToken'];
export type Provider = Schemas['Provider'];
export type RoleMappings = Schemas['RoleMappings'];
export type AttributeMappings = Schemas['AttributeMappings'];
export type SyncHealth = Schemas['SyncHealth'];
export type ScimTokenRotation = Schemas['ScimTokenRotation'];
export type User = Schemas['User'];
export type Group = Schemas['Group'];
export type ErrorCode = Schemas['ErrorCode'];
export type WebhookEndpoint = Schemas['WebhookEndpoint'];
export type WebhookDelivery = Schemas['WebhookDelivery'];
export type Session = Schemas['Session'];
export type SessionTokens = Schemas['SessionTokens'];
export type SigningKey = Schemas['SigningKey'];
export type DeprovisionGuard = Schemas['DeprovisionGuard'];
export type ChangePreview = Schemas['ChangePreview'];
export type MemberChange = Schemas['MemberChange'];
export type DirectorySnapshot = Schemas['DirectorySnapshot'];
export type SnapshotMember = Schemas['SnapshotMember'];
export type DirectoryDiff = Schemas['DirectoryDiff'];
export type DirectoryChange = Schemas['DirectoryChange'];
export type PortalLink = Schemas['PortalLink'];
export type PortalLinkCreate = Schemas['PortalLinkCreate'];
export type EventActor = Schemas['EventActor'];
export type { components, paths } from './contract.js';
