import { sql } from 'kysely';
import type { Context } from '../context.js';
import type { ConnectionRow, SyncLogTable } from '../db/schema.js';

/**
 * What the Admin Portal reads, always within one organization: every query takes the session's
 * organization id, so a connection of another organization is "not found" here, never shown.
 */

/** `held`: the deprovisioning guard holds the IdP's deactivations until an admin releases it. */
export type ConnectionState = 'held' | 'waiting' | 'syncing' | 'errors' | 'token_expiring';

export interface ConnectionSummary {
  connection: ConnectionRow;
  state: ConnectionState;
  firstRequestAt: Date | null;
  lastRequestAt: Date | null;
  hourRequests: number;
  hourErrors: number;
  users: number;
  groups: number;
  /** When the token the IdP still uses stops working (set in state `token_expiring`). */
  tokenExpiresAt: Date | null;
}

/** One summary per active connection of the organization (overview and live check). */
export async function summarizeConnections(
  ctx: Context,
  organizationId: string,
  connectionId?: string,
): Promise<ConnectionSummary[]> {
  const now = ctx.now();
  const hourAgo = new Date(now.getTime() - 3_600_000);
  let query = ctx.db
    .selectFrom('connections as c')
    .selectAll('c')
    .select([
      sql<Date | null>`(select min(created_at) from sync_log l where l.connection_id = c.id)`.as('first_at'),
      sql<Date | null>`(select max(created_at) from sync_log l where l.connection_id = c.id)`.as('last_at'),
      sql<number>`(select count(*) from sync_log l where l.connection_id = c.id and l.created_at > ${hourAgo})`.as(
        'hour_requests',
      ),
      sql<number>`(select count(*) from sync_log l
        where l.connection_id = c.id and l.created_at > ${hourAgo} and l.status >= 400)`.as('hour_errors'),
      sql<number>`(select count(*) from users u
        where u.connection_id = c.id and u.deleted_at is null and u.active)`.as('users'),
      sql<number>`(select count(*) from groups g where g.connection_id = c.id and g.deleted_at is null)`.as(
        'groups',
      ),
      // The IdP still authenticates with a rotated-out token that has a deadline, and not yet
      // with the newer one: it will fail once that deadline passes.
      sql<Date | null>`(select min(t.expires_at) from scim_tokens t
        where t.connection_id = c.id and t.expires_at > ${now} and t.last_used_at is not null
          and not exists (select 1 from scim_tokens n where n.connection_id = c.id and n.expires_at is null
                          and n.last_used_at is not null))`.as('token_expires_at'),
    ])
    .where('c.organization_id', '=', organizationId)
    .where('c.state', 'in', ['active', 'deprovisioning_held'])
    .orderBy('c.id');
  if (connectionId) query = query.where('c.id', '=', connectionId);
  const rows = await query.execute();
  return rows.map((row) => {
    const { first_at, last_at, hour_requests, hour_errors, users, groups, token_expires_at, ...connection } =
      row;
    const hourErrors = Number(hour_errors);
    const tokenExpiresAt = token_expires_at ? new Date(token_expires_at) : null;
    const state: ConnectionState =
      connection.state === 'deprovisioning_held'
        ? 'held'
        : !last_at
          ? 'waiting'
          : hourErrors > 0
            ? 'errors'
            : tokenExpiresAt
              ? 'token_expiring'
              : 'syncing';
    return {
      connection,
      state,
      firstRequestAt: first_at ? new Date(first_at) : null,
      lastRequestAt: last_at ? new Date(last_at) : null,
      hourRequests: Number(hour_requests),
      hourErrors,
      users: Number(users),
      groups: Number(groups),
      tokenExpiresAt,
    };
  });
}

export type SyncLogLine = Pick<
  SyncLogTable,
  'request_id' | 'method' | 'path' | 'status' | 'scim_type' | 'detail'
> & { created_at: Date };

/** Recent SCIM requests of a connection, newest first; `errorsOnly` keeps status >= 400. */
export async function readSyncLog(
  ctx: Context,
  connectionId: string,
  options: { errorsOnly: boolean; limit: number; oldestFirst?: boolean },
): Promise<SyncLogLine[]> {
  let query = ctx.db
    .selectFrom('sync_log')
    .select(['created_at', 'request_id', 'method', 'path', 'status', 'scim_type', 'detail'])
    .where('connection_id', '=', connectionId)
    .orderBy('id', options.oldestFirst ? 'asc' : 'desc')
    .limit(options.limit);
  if (options.errorsOnly) query = query.where('status', '>=', 400);
  return query.execute();
}

/** The latest users and groups the IdP pushed (what the live check shows as "came in"). */
export async function recentArrivals(ctx: Context, connectionId: string, limit: number) {
  const users = await ctx.db
    .selectFrom('users')
    .select(['id', 'user_name', 'display_name', 'email', 'active'])
    .where('connection_id', '=', connectionId)
    .where('deleted_at', 'is', null)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  const groups = await ctx.db
    .selectFrom('groups')
    .select(['id', 'display_name', 'member_count'])
    .where('connection_id', '=', connectionId)
    .where('deleted_at', 'is', null)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return { users, groups };
}

/** Every live group of the connection with its member count, by name. */
export async function listConnectionGroups(ctx: Context, connectionId: string) {
  return ctx.db
    .selectFrom('groups')
    .select(['id', 'display_name', 'external_id', 'member_count'])
    .where('connection_id', '=', connectionId)
    .where('deleted_at', 'is', null)
    .orderBy(sql`lower(display_name)`)
    .limit(500)
    .execute();
}
