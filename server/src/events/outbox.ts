import type { Kysely, Transaction } from 'kysely';
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
