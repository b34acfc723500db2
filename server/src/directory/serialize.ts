import type { Schemas } from '../contract.js';
import type { ConnectionRow, GroupRow, MembershipRow, OrganizationRow, UserRow } from '../db/schema.js';
import { displayNameOf } from './user-attributes.js';

/**
 * Database rows -> management API resources (snake_case, as openapi/roster.yaml spells them).
 * One mapper per resource, used both by the /v1 handlers and for event payloads, so that an event
 * carries exactly the resource the API would return. Sessions and signing keys: sessions/serialize.ts.
 */

const iso = (date: Date) => date.toISOString();

export function toOrganization(row: OrganizationRow): Schemas['Organization'] {
  return {
    object: 'organization',
    id: row.id,
    name: row.name,
    slug: row.slug,
    default_role: row.default_role,
    metadata: row.metadata,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

export function scimBaseUrl(publicUrl: string, connectionId: string): string {
  return `${publicUrl}/scim/v2/${connectionId}`;
}

export function toConnection(row: ConnectionRow, publicUrl: string): Schemas['Connection'] {
  return {
    object: 'connection',
    id: row.id,
    organization_id: row.organization_id,
    name: row.name,
    provider: row.provider as Schemas['Provider'],
    state: row.state,
    scim: { base_url: scimBaseUrl(publicUrl, row.id) },
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

export function toUser(row: UserRow): Schemas['User'] {
  return {
    object: 'user',
    id: row.id,
    organization_id: row.organization_id,
    connection_id: row.connection_id,
    external_id: row.external_id,
    user_name: row.user_name,
    email: row.email,
    name: displayNameOf(row.attributes),
    given_name: row.given_name,
    family_name: row.family_name,
    active: row.active,
    raw_attributes: row.attributes,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

export function toGroup(row: GroupRow): Schemas['Group'] {
  return {
    object: 'group',
    id: row.id,
    organization_id: row.organization_id,
    connection_id: row.connection_id,
    external_id: row.external_id,
    name: row.display_name,
    member_count: row.member_count,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

export function toMembershipUser(
  user: Pick<UserRow, 'id' | 'user_name' | 'email' | 'active' | 'attributes'>,
): Schemas['MembershipUser'] {
  return {
    id: user.id,
    user_name: user.user_name,
    email: user.email,
    name: displayNameOf(user.attributes),
    active: user.active,
  };
}

export function toMembership(
  row: MembershipRow,
  user: Schemas['MembershipUser'],
  permissions: readonly string[],
): Schemas['Membership'] {
  return {
    object: 'membership',
    id: row.id,
    organization_id: row.organization_id,
    user,
    role: row.role_key,
    permissions: [...permissions],
    status: row.status,
    source: row.source,
    metadata: row.metadata,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}
