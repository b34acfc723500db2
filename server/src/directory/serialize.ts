import type { Schemas } from '../contract.js';
import type { ConnectionRow, OrganizationRow } from '../db/schema.js';

/**
 * Database rows -> management API resources (snake_case, as openapi/roster.yaml spells them).
 * One mapper per resource, used both by the /v1 handlers and for event payloads, so that an event
 * carries exactly the resource the API would return.
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
