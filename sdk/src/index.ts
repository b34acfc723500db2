/**
 * `@roster/sdk`: typed access to a Roster server.
 *
 * Exports are listed by name (never `export *` from generated code), so the public surface is a
 * deliberate choice; resource types are generated from openapi/roster.yaml.
 */
export {
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
  type EventType,
} from './events.js';
export { type Page, PagePromise } from './pagination.js';
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
