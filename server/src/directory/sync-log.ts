import { sql } from 'kysely';
import type { Context } from '../context.js';
import { compiledOnce } from '../db/sql.js';

export interface SyncLogEntry {
  connectionId: string;
  requestId: string;
  method: string;
  path: string;
  status: number;
  scimType: string | null;
  detail: string | null;
  durationMs: number;
  at: Date;
}

/**
 * The per-connection SCIM request log behind sync health: method, path, status, scimType, a short
 * detail and the duration; never bodies or secrets. Entries are buffered and written in batches
 * off the request path (every `flushMs`, or at `maxBuffer` entries), so logging costs the IdP no
 * latency; a crash loses at most the last batch of log lines, never directory data. Entries for
 * connections that do not exist (garbage ids on unauthenticated requests) are dropped.
 */
export class SyncLogWriter {
  readonly #ctx: Context;
  readonly #flushMs: number;
  readonly #maxBuffer: number;
  #buffer: SyncLogEntry[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(ctx: Context, options: { flushMs?: number; maxBuffer?: number } = {}) {
    this.#ctx = ctx;
    this.#flushMs = options.flushMs ?? 250;
    this.#maxBuffer = options.maxBuffer ?? 500;
  }

  record(entry: SyncLogEntry): void {
    // A NUL (from a hostile request's path or detail) would fail the batch insert of every entry.
    this.#buffer.push({
      ...entry,
      path: entry.path.replaceAll('\0', ''),
      detail: entry.detail?.replaceAll('\0', '') ?? null,
    });
    if (this.#buffer.length >= this.#maxBuffer) {
      void this.flush();
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => void this.flush(), this.#flushMs);
      this.#timer.unref();
    }
  }

  /** Writes what is buffered; resolves when it is written (or dropped after an error). */
  flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const batch = this.#buffer;
    this.#buffer = [];
    if (batch.length === 0) return this.#flushing;
    this.#flushing = this.#flushing.then(() => this.#write(batch));
    return this.#flushing;
  }

  async #write(batch: SyncLogEntry[]): Promise<void> {
    try {
      await insertBatch(this.#ctx.db, {
        connectionIds: batch.map((e) => e.connectionId),
        requestIds: batch.map((e) => e.requestId),
        methods: batch.map((e) => e.method),
        paths: batch.map((e) => e.path),
        statuses: batch.map((e) => e.status),
        scimTypes: batch.map((e) => e.scimType),
        details: batch.map((e) => e.detail),
        durations: batch.map((e) => e.durationMs),
        ats: batch.map((e) => e.at.toISOString()),
      });
    } catch (error) {
      this.#ctx.log.warn({ err: error, entries: batch.length }, 'could not write the SCIM sync log');
    }
  }
}

/**
 * One batch as one statement of fixed text with one array per column. It was a VALUES list of
 * ten parameters per entry, built and compiled for every batch: up to 5,000 parameters, compiled
 * on the event loop while up to 16 requests waited (a batch fills in 0.2 s at 2,700 lookups/s).
 */
const insertBatch = compiledOnce(
  (
    _db,
    p: {
      connectionIds: string[];
      requestIds: string[];
      methods: string[];
      paths: string[];
      statuses: number[];
      scimTypes: (string | null)[];
      details: (string | null)[];
      durations: number[];
      ats: string[];
    },
  ) => sql`
    insert into sync_log (organization_id, connection_id, request_id, method, path, status, scim_type, detail,
                          duration_ms, created_at)
    select c.organization_id, v.connection_id, v.request_id, v.method, v.path, v.status, v.scim_type, v.detail,
           v.duration_ms, v.created_at
    from unnest(${p.connectionIds}::text[], ${p.requestIds}::text[], ${p.methods}::text[], ${p.paths}::text[],
                ${p.statuses}::int[], ${p.scimTypes}::text[], ${p.details}::text[], ${p.durations}::real[],
                ${p.ats}::timestamptz[]) with ordinality
         as v(connection_id, request_id, method, path, status, scim_type, detail, duration_ms, created_at, n)
    join connections c on c.id = v.connection_id
    order by v.n`,
);
