import { sql } from 'kysely';
import type { Context } from '../context.js';

/** Who made a change in the Admin Portal, as events carry it (`actor`). */
export interface PortalActor {
  type: 'portal';
  portal_session_id: string;
}

/**
 * A service context whose transactions record `actor` on every event they append. The events
 * table fills `actor` from the transaction-local setting `roster.actor` (migration 0005), so the
 * portal calls the very service functions the management API calls, and writes the same events,
 * with only the actor added.
 */
export function withActor(ctx: Context, actor: PortalActor): Context {
  const json = JSON.stringify(actor);
  return {
    ...ctx,
    feedHead: () => ctx.feedHead(),
    transaction: (fn) =>
      ctx.transaction(async (trx) => {
        await sql`select set_config('roster.actor', ${json}, true)`.execute(trx);
        return fn(trx);
      }),
    // Single-statement writes cannot carry a transaction-local setting: run them in a transaction.
    write: (fn) =>
      ctx.transaction(async (trx) => {
        await sql`select set_config('roster.actor', ${json}, true)`.execute(trx);
        return fn(trx);
      }),
  };
}
