import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import { eventTypeValues, type Schemas } from '../contract.js';
import type { DB, JsonObject } from '../db/schema.js';
import { newId } from '../ids.js';

/** Every event type of the feed: the contract's EventType enum (openapi/roster.yaml, plus role.*). */
export const EVENT_TYPES = eventTypeValues;

export type EventType = Schemas['EventType'];

export interface NewEvent {
  type: EventType;
  organizationId: string | null;
  data: JsonObject;
}

/**
 * Appends events inside the caller's transaction (transactional outbox): they commit or roll back
 * with the change they describe. They are inserted without a feed position; the sequencer numbers
 * them once committed (see sequencer.ts). Run the transaction through `ServiceContext.transaction`
 * so that the sequencer is kicked after the commit.
 *
 * Call it after the statement that changed (and so locked) the rows the event is about, so that
 * two changes to one resource get event `seq`s in the order they were made.
 */
export async function appendEvents(trx: Transaction<DB> | Kysely<DB>, events: NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  const rows = events.map((event) => ({
    id: newId('event'),
    type: event.type,
    organization_id: event.organizationId,
    data: JSON.stringify(event.data),
  }));
  // One statement: the events, and their seqs queued for the sequencer.
  await trx
    .with('inserted', (db) => db.insertInto('events').values(rows).returning('seq'))
    .insertInto('event_queue')
    .columns(['seq'])
    .expression((eb) => eb.selectFrom('inserted').select('seq'))
    .execute();
}

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * Event ids for rows that one statement makes: the statement's own id with its last 4 characters
 * replaced by the row number `n` (1-based, up to 32^4), in the same alphabet, so that they look
 * and sort like every other id.
 */
function eventIdSql(n: string, base: unknown) {
  const digit = (shift: number) => `substr('${CROCKFORD}', ((${n} >> ${shift}) & 31)::int + 1, 1)`;
  return sql`${base} || ${sql.raw([15, 10, 5, 0].map(digit).join(' || '))}`;
}

/**
 * The statement's own part of its event ids (see eventIdSql): pass a fresh one as `idBase` of
 * {@link eventCtes} when the statement is compiled once and run many times.
 */
export const eventIdBase = () => newId('event').slice(0, -4);

/**
 * The one event writer for set-based SQL: CTEs named `name` (the inserted events' seqs) and
 * `name_queued` (their queue entries) that any write statement can carry, so that a change and
 * its events are one statement. `source` selects `(ord, type, organization_id, data)` rows, data
 * as jsonb; seqs follow `ord`. Write it after the CTE that changes the rows the events are about
 * and select from that CTE: the event then takes its seq while the statement holds the row lock,
 * in the order the changes were made (see {@link appendEvents}).
 */
export function eventCtes(
  name: string,
  source: RawBuilder<unknown>,
  idBase: unknown = eventIdBase(),
): RawBuilder<unknown> {
  return sql`${sql.raw(name)} as (
      insert into events (id, type, organization_id, data)
      select ${eventIdSql('s.n', idBase)}, s.type, s.organization_id, s.data
      from (select q.type, q.organization_id, q.data, row_number() over (order by q.ord) as n
            from (${source}) q) s
      order by s.n
      returning seq
    ), ${sql.raw(name)}_queued as (
      insert into event_queue (seq) select seq from ${sql.raw(name)}
    )`;
}
