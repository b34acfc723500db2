import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** Kysely's view of the tables created by the migrations in ./migrations. */

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
/** jsonb is written as a JSON string (both drivers pass strings through) and read as a value. */
type Json<T> = ColumnType<T, string | undefined, string>;

export type JsonObject = { [key: string]: unknown };

export interface ApiKeysTable {
  id: string;
  key_hash: string;
  /** `generated`: the root key made at first boot; `api`: a key created through /v1/api_keys. */
  source: 'generated' | 'env' | 'api';
  name: string | null;
  organization_id: string | null;
  scopes: Json<string[]>;
  hint: string | null;
  created_at: Timestamp;
  revoked_at: NullableTimestamp;
}

export interface RolesTable {
  key: string;
  id: string;
  name: string;
  description: string | null;
  permissions: Json<string[]>;
  builtin: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface OrganizationsTable {
  id: string;
  name: string;
  slug: string;
  default_role: Generated<string>;
  metadata: Json<JsonObject>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** `deprovisioning_held`: the deprovisioning guard tripped; SCIM deactivations and deletions answer 503. */
export type ConnectionState = 'active' | 'deprovisioning_held' | 'deleted';

export interface ConnectionsTable {
  id: string;
  organization_id: string;
  name: string;
  provider: string;
  state: Generated<ConnectionState>;
  attribute_mappings: Json<AttributeMapping[]>;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: NullableTimestamp;
}

export interface AttributeMapping {
  /** SCIM attribute path, e.g. `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`. */
  attribute: string;
  /** Key under membership.metadata. */
  key: string;
}

export interface ScimTokensTable {
  id: string;
  organization_id: string;
  connection_id: string;
  token_hash: string;
  hint: string;
  created_at: Timestamp;
  expires_at: NullableTimestamp;
  last_used_at: NullableTimestamp;
}

export interface UsersTable {
  id: string;
  organization_id: string;
  connection_id: string | null;
  user_name: string;
  external_id: string | null;
  active: Generated<boolean>;
  email: string | null;
  given_name: string | null;
  family_name: string | null;
  display_name: string | null;
  attributes: Json<JsonObject>;
  version: Generated<number>;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: NullableTimestamp;
}

export interface GroupsTable {
  id: string;
  organization_id: string;
  connection_id: string;
  display_name: string;
  external_id: string | null;
  attributes: Json<JsonObject>;
  member_count: Generated<number>;
  version: Generated<number>;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: NullableTimestamp;
}

export interface GroupMembersTable {
  group_id: string;
  user_id: string;
  organization_id: string;
  created_at: Timestamp;
}

export type RoleSource =
  | { kind: 'default' }
  /** Set through the API: IdP group changes leave it alone. */
  | { kind: 'pinned' }
  | { kind: 'group'; group_id: string; group_name: string; mapping_id: string; precedence: number };

export interface LastChange {
  at: string;
  request_id: string;
  via: 'scim' | 'api' | 'portal';
  connection_id?: string;
  method?: string;
  path?: string;
}

export interface MembershipsTable {
  id: string;
  organization_id: string;
  user_id: string;
  role_key: string;
  role_source: Json<RoleSource>;
  status: Generated<'active' | 'inactive'>;
  source: 'scim' | 'api';
  metadata: Json<JsonObject>;
  last_change: Json<LastChange | null>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface RoleMappingsTable {
  id: string;
  organization_id: string;
  connection_id: string;
  group_ref: string;
  role_key: string;
  precedence: number;
}

export interface SessionsTable {
  id: string;
  organization_id: string;
  user_id: string;
  /** Null once the membership is deleted (the session is revoked then). */
  membership_id: string | null;
  created_at: Timestamp;
  expires_at: Timestamp;
  last_refreshed_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
  revoke_reason: string | null;
  token_expires_at: NullableTimestamp;
  /** The generation of the session's current refresh token; 0: a `refresh_tokens` row (before 0013). */
  refresh_generation: Generated<number>;
  /** SHA-256 of the current refresh token (generation > 0). */
  refresh_token_hash: string | null;
  /** SHA-256 of the refresh token the current one succeeded (the reuse interval answers it). */
  refresh_previous_hash: string | null;
  /** When the current generation was issued (the reuse interval counts from it). */
  refresh_rotated_at: NullableTimestamp;
  /** The refresh rate limit's theoretical arrival time (epoch ms, the database's clock). */
  refresh_tat: number | null;
}

export interface RefreshTokensTable {
  token_hash: string;
  session_id: string;
  organization_id: string;
  created_at: Timestamp;
  used_at: NullableTimestamp;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  public_jwk: Json<JsonObject>;
  private_key: string;
  state: 'next' | 'active' | 'retiring';
  created_at: Timestamp;
  retired_at: NullableTimestamp;
  expires_at: NullableTimestamp;
}

export interface EventsTable {
  seq: Generated<number>;
  id: string;
  type: string;
  organization_id: string | null;
  data: Json<JsonObject>;
  /** Set by the column default from `roster.actor` (see migrations/0005-portal.ts). */
  actor: ColumnType<JsonObject | null, never, never>;
  created_at: Timestamp;
}

export interface EventQueueTable {
  seq: number;
}

export interface FeedTable {
  position: number;
  seq: number;
  organization_id: string | null;
  type: string;
  created_at: Timestamp;
}

export interface EventFeedTable {
  id: number;
  head: number;
  purged_through: number;
  /** The position directory_baseline reflects (see directory/history.ts). */
  baseline_through: Generated<number>;
}

export interface SyncLogTable {
  id: Generated<number>;
  organization_id: string;
  connection_id: string;
  request_id: string;
  method: string;
  path: string;
  status: number;
  scim_type: string | null;
  detail: string | null;
  duration_ms: number;
  created_at: Timestamp;
}

export interface IdempotencyKeysTable {
  key_hash: string;
  request_hash: string;
  status: number | null;
  response: string | null;
  created_at: Timestamp;
  expires_at: Timestamp;
}

export interface InstanceSettingsTable {
  name: string;
  value: string;
}

export interface WebhookEndpointsTable {
  id: string;
  organization_id: string | null;
  url: string;
  description: string | null;
  types: Json<string[]>;
  secret: string;
  enabled: Generated<boolean>;
  cursor_position: number;
  attempts: Generated<number>;
  first_failure_at: NullableTimestamp;
  next_attempt_at: Timestamp;
  lease_owner: string | null;
  lease_until: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface WebhookDeliveriesTable {
  id: string;
  endpoint_id: string;
  organization_id: string | null;
  event_id: string;
  event_type: string;
  position: number;
  attempt: number;
  outcome: 'delivered' | 'failed' | 'gave_up';
  response_status: number | null;
  error: string | null;
  duration_ms: number;
  created_at: Timestamp;
}

export interface DeprovisionGuardsTable {
  connection_id: string;
  organization_id: string;
  enabled: boolean;
  max_in_window: number | null;
  max_percent: number | null;
  window_seconds: number;
  /** Deprovisions before this instant do not count (a release restarts the count). */
  counting_since: Timestamp;
  /** Until then the guard lets every deprovision through (a release "for a window"). */
  suspended_until: NullableTimestamp;
  held_at: NullableTimestamp;
  updated_at: Timestamp;
}

export interface DeprovisionsTable {
  id: Generated<number>;
  organization_id: string;
  connection_id: string;
  user_id: string;
  kind: 'deactivated' | 'deleted';
  created_at: Timestamp;
}

export interface DirectoryBaselineTable {
  organization_id: string;
  membership_id: string;
  member: Json<JsonObject>;
}

export interface PortalLinksTable {
  id: string;
  organization_id: string;
  token_hash: string;
  intent: string;
  return_url: string | null;
  created_at: Timestamp;
  expires_at: Timestamp;
  used_at: NullableTimestamp;
}

export interface PortalSessionsTable {
  id: string;
  organization_id: string;
  link_id: string;
  token_hash: string;
  return_url: string | null;
  created_at: Timestamp;
  expires_at: Timestamp;
}

export interface RateLimitsTable {
  key: string;
  tat: number;
}

export interface ScimPageCursorsTable {
  key: string;
  last_id: string;
  created_at: Generated<Timestamp>;
}

/** Live users and groups per connection, kept by triggers (migration 0009); a count is the sum of its shards. */
export interface ScimCountsTable {
  organization_id: string;
  connection_id: string;
  resource: 'users' | 'groups';
  shard: number;
  /** bigint: read as a string by pg, as a number or bigint by PGlite. */
  n: ColumnType<string | number | bigint, number, number>;
  /** Grows by one with every change of `n` (migration 0014): the change stamp of PageAnchors. */
  changes: ColumnType<string | number | bigint, number | undefined, number>;
}

export interface DB {
  api_keys: ApiKeysTable;
  roles: RolesTable;
  organizations: OrganizationsTable;
  connections: ConnectionsTable;
  scim_tokens: ScimTokensTable;
  users: UsersTable;
  groups: GroupsTable;
  group_members: GroupMembersTable;
  memberships: MembershipsTable;
  role_mappings: RoleMappingsTable;
  sessions: SessionsTable;
  refresh_tokens: RefreshTokensTable;
  signing_keys: SigningKeysTable;
  events: EventsTable;
  event_queue: EventQueueTable;
  feed: FeedTable;
  event_feed: EventFeedTable;
  sync_log: SyncLogTable;
  idempotency_keys: IdempotencyKeysTable;
  instance_settings: InstanceSettingsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  deprovision_guards: DeprovisionGuardsTable;
  deprovisions: DeprovisionsTable;
  directory_baseline: DirectoryBaselineTable;
  portal_links: PortalLinksTable;
  portal_sessions: PortalSessionsTable;
  rate_limits: RateLimitsTable;
  scim_page_cursors: ScimPageCursorsTable;
  scim_counts: ScimCountsTable;
}

export type UserRow = Selectable<UsersTable>;
export type NewUser = Insertable<UsersTable>;
export type UserUpdate = Updateable<UsersTable>;
export type GroupRow = Selectable<GroupsTable>;
export type OrganizationRow = Selectable<OrganizationsTable>;
export type ConnectionRow = Selectable<ConnectionsTable>;
export type DeprovisionGuardRow = Selectable<DeprovisionGuardsTable>;
export type MembershipRow = Selectable<MembershipsTable>;
export type RoleRow = Selectable<RolesTable>;
export type SessionRow = Selectable<SessionsTable>;
export type EventRow = Selectable<EventsTable>;
export type WebhookEndpointRow = Selectable<WebhookEndpointsTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
