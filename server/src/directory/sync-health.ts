import { sql } from 'kysely';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import { getConnection } from './connections.js';

/** Sync health from the SCIM request log: when the IdP last called, volumes and errors, last failures. */
export async function getSyncHealth(
  ctx: Context,
  connectionId: string,
  failures: number,
): Promise<Schemas['SyncHealth']> {
  await getConnection(ctx, connectionId);
  const now = ctx.now().getTime();
  const hourAgo = new Date(now - 3_600_000);
  const dayAgo = new Date(now - 86_400_000);
  const stats = await ctx.db
    .selectFrom('sync_log')
    .where('connection_id', '=', connectionId)
    .select([
      sql<Date | null>`max(created_at)`.as('last_request_at'),
      sql<Date | null>`max(created_at) filter (where status < 400)`.as('last_success_at'),
      sql<number>`count(*) filter (where created_at > ${hourAgo})`.as('hour_requests'),
      sql<number>`count(*) filter (where created_at > ${hourAgo} and status >= 400)`.as('hour_errors'),
      sql<number>`count(*) filter (where created_at > ${dayAgo})`.as('day_requests'),
      sql<number>`count(*) filter (where created_at > ${dayAgo} and status >= 400)`.as('day_errors'),
    ])
    .executeTakeFirstOrThrow();
  const recent =
    failures === 0
      ? []
      : await ctx.db
          .selectFrom('sync_log')
          .select(['created_at', 'request_id', 'method', 'path', 'status', 'scim_type', 'detail'])
          .where('connection_id', '=', connectionId)
          .where('status', '>=', 400)
          .orderBy('id', 'desc')
          .limit(failures)
          .execute();
  const window = (requests: number, errors: number) => ({
    requests: Number(requests),
    errors: Number(errors),
    error_rate: Number(requests) === 0 ? 0 : Number(errors) / Number(requests),
  });
  return {
    object: 'sync_health',
    connection_id: connectionId,
    last_request_at: stats.last_request_at ? new Date(stats.last_request_at).toISOString() : null,
    last_success_at: stats.last_success_at ? new Date(stats.last_success_at).toISOString() : null,
    last_hour: window(stats.hour_requests, stats.hour_errors),
    last_day: window(stats.day_requests, stats.day_errors),
    recent_failures: recent.map((row) => ({
      at: row.created_at.toISOString(),
      request_id: row.request_id,
      method: row.method,
      path: row.path,
      status: row.status,
      scim_type: row.scim_type,
      detail: row.detail,
    })),
  };
}
