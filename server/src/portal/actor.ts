import { sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { DB } from '../db/schema.js';

/** Who made a change in the Admin Portal, as events carry it (`actor`). */
export interface PortalActor {
  type: 'portal';
  portal_session_id: string;
}

/** Makes every event this transaction appends from now on carry `actor` (see migration 0005). */
export async function setActor(trx: Transaction<DB>, actor: PortalActor): Promise<void> {
  await sql`select set_config('roster.actor', ${JSON.stringify(actor)}, true)`.execute(trx);
}

/**
 * A service context whose transactions record `actor` on every event they append. The events
 * table fills `actor` from the transaction-local setting `roster.actor` (migration 0005), so the
 * portal calls the very service functions the management API calls, and writes the same events,
 * with only the actor added.
 */
export function withActor(ctx: Context, actor: PortalActor): Context {
  return {
    ...ctx,
    feedHead: () => ctx.feedHead(),
    transaction: (fn) =>
      ctx.transaction(async (trx) => {
        await setActor(trx, actor);
        return fn(trx);
      }),
    // Single-statement writes cannot carry a transaction-local setting: run them in a transaction.
    write: (fn) =>
      ctx.transaction(async (trx) => {
        await setActor(trx, actor);
        return fn(trx);
      }),
  };
}
