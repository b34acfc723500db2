import { type RawBuilder, sql } from 'kysely';

/**
 * Event payloads built by the statement that makes the change, for set-based writes (a user's
 * sessions, a group's members): the same resources as the mappers in serialize.ts, field for
 * field, as jsonb. Each takes the SQL aliases of the rows it reads.
 */

/** A timestamp as `Date.toISOString()` writes it (UTC, milliseconds). */
export const isoSql = (column: string) =>
  sql.raw(`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`);

/** A user's display name, as displayNameOf() computes it (see userDisplayName). */
const displayNameSql = (u: string) =>
  sql.raw(`coalesce(${u}.display_name, ${u}.attributes -> 'name' ->> 'formatted',
    nullif(concat_ws(' ', ${u}.given_name, ${u}.family_name), ''))`);

/** toMembership(): membership `m`, its user `u` and role `r`. */
export function membershipJson(m: string, u: string, r: string): RawBuilder<unknown> {
  return sql`jsonb_build_object(
    'object', 'membership', 'id', ${sql.raw(m)}.id, 'organization_id', ${sql.raw(m)}.organization_id,
    'user', jsonb_build_object('id', ${sql.raw(u)}.id, 'user_name', ${sql.raw(u)}.user_name,
      'email', ${sql.raw(u)}.email, 'name', ${displayNameSql(u)}, 'active', ${sql.raw(u)}.active),
    'role', ${sql.raw(m)}.role_key, 'permissions', ${sql.raw(r)}.permissions, 'status', ${sql.raw(m)}.status,
    'source', ${sql.raw(m)}.source, 'metadata', ${sql.raw(m)}.metadata,
    'created_at', ${isoSql(`${m}.created_at`)}, 'updated_at', ${isoSql(`${m}.updated_at`)})`;
}

/** toSession() of session `s`, just revoked (status `revoked`). */
export function revokedSessionJson(s: string): RawBuilder<unknown> {
  return sql`jsonb_build_object(
    'object', 'session', 'id', ${sql.raw(s)}.id, 'user_id', ${sql.raw(s)}.user_id,
    'organization_id', ${sql.raw(s)}.organization_id, 'status', 'revoked',
    'created_at', ${isoSql(`${s}.created_at`)}, 'expires_at', ${isoSql(`${s}.expires_at`)},
    'last_refreshed_at', ${isoSql(`${s}.last_refreshed_at`)},
    'token_expires_at', ${isoSql(`${s}.token_expires_at`)},
    'revoked_at', ${isoSql(`${s}.revoked_at`)}, 'revoke_reason', ${sql.raw(s)}.revoke_reason)`;
}

/** The body of `group.user_added` / `group.user_removed`: group `g`, user `u`. */
export function groupMembershipJson(g: string, u: string): RawBuilder<unknown> {
  return sql`jsonb_build_object(
    'object', 'group_membership', 'organization_id', ${sql.raw(g)}.organization_id,
    'connection_id', ${sql.raw(g)}.connection_id,
    'group', jsonb_build_object('id', ${sql.raw(g)}.id, 'name', ${sql.raw(g)}.display_name),
    'user', jsonb_build_object('id', ${sql.raw(u)}.id, 'user_name', ${sql.raw(u)}.user_name, 'email', ${sql.raw(u)}.email))`;
}

/** toGroup() of group `g`. */
export function groupJson(g: string): RawBuilder<unknown> {
  return sql`jsonb_build_object(
    'object', 'group', 'id', ${sql.raw(g)}.id, 'organization_id', ${sql.raw(g)}.organization_id,
    'connection_id', ${sql.raw(g)}.connection_id, 'external_id', ${sql.raw(g)}.external_id,
    'name', ${sql.raw(g)}.display_name, 'member_count', ${sql.raw(g)}.member_count,
    'created_at', ${isoSql(`${g}.created_at`)}, 'updated_at', ${isoSql(`${g}.updated_at`)})`;
}
