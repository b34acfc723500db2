import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest } from '../src/db/migrate.js';
import { createTestDatabase, startTestServer, type TestDatabase } from './harness.js';

/** A fresh test database for the enclosing describe block, closed and dropped after it. */
function withTestDatabase(): { current: TestDatabase } {
  const holder = {} as { current: TestDatabase };
  beforeAll(async () => {
    holder.current = await createTestDatabase();
  });
  afterAll(async () => {
    await holder.current.database.close();
    await holder.current.drop();
  });
  return holder;
}

describe('migrations', () => {
  const testDb = withTestDatabase();

  it('apply once, then are a no-op', async () => {
    const first = await migrateToLatest(testDb.current.database.db);
    expect(first).toEqual([
      '0001-initial',
      '0002-idempotency',
      '0003-webhooks',
      '0004-sessions',
      '0005-api-keys',
      '0006-safety-rails',
      '0007-portal',
      '0008-shared-state',
      '0009-scim-counts',
      '0010-refresh-token-owner',
      '0011-deleted-user-groups',
      '0013-refresh-generation',
      '0014-scim-count-changes',
      '0015-revoked-token-bound',
    ]);
    const tables = async () =>
      (
        await sql<{ table_name: string }>`
          select table_name from information_schema.tables
          where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name`.execute(
          testDb.current.database.db,
        )
      ).rows.map((r) => r.table_name);
    const before = await tables();
    expect(before).toEqual(
      expect.arrayContaining([
        'organizations',
        'connections',
        'scim_tokens',
        'users',
        'groups',
        'group_members',
        'memberships',
        'roles',
        'role_mappings',
        'sessions',
        'refresh_tokens',
        'signing_keys',
        'events',
        'api_keys',
        'sync_log',
      ]),
    );
    expect(await migrateToLatest(testDb.current.database.db)).toEqual([]);
    expect(await tables()).toEqual(before);
  });

  it('run concurrently without failing or applying twice', async () => {
    const results = await Promise.all([
      migrateToLatest(testDb.current.database.db),
      migrateToLatest(testDb.current.database.db),
    ]);
    expect(results).toEqual([[], []]);
  });

  it('leave no lock behind, also behind a transaction-mode pooler', async () => {
    // Kysely's own lock is session-level: behind PgBouncer its unlock ran on another server
    // connection and the lock stayed held by a pooled one, stalling the next migration. Several
    // pooled connections first, so that the pooler has others to hand out.
    const held = async () => {
      const { rows } = await sql<{ held: number }>`
        select count(*)::int as held from pg_locks
        where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())`.execute(
        testDb.current.database.db,
      );
      return rows[0]?.held;
    };
    for (let run = 0; run < 3; run++) {
      await Promise.all(
        Array.from({ length: 4 }, () => sql`select pg_sleep(0.05)`.execute(testDb.current.database.db)),
      );
      expect(await migrateToLatest(testDb.current.database.db)).toEqual([]);
      expect(await held()).toBe(0);
    }
  });

  it('carry organization_id on every tenant-scoped table', async () => {
    const { rows } = await sql<{ table_name: string }>`
      select t.table_name from information_schema.tables t
      where t.table_schema = current_schema() and t.table_type = 'BASE TABLE'
        -- Not tenant data: environment-wide tables, the sequencer's queue of event seqs, and the
        -- processes' shared rate-limit buckets and page cursors (keyed by connection or session).
        and t.table_name not in ('organizations', 'roles', 'api_keys', 'signing_keys', 'event_feed', 'event_queue', 'idempotency_keys', 'instance_settings',
                                 'rate_limits', 'scim_page_cursors',
                                 'roster_migrations', 'roster_migrations_lock')
        and not exists (select 1 from information_schema.columns c
                        where c.table_schema = t.table_schema and c.table_name = t.table_name
                          and c.column_name = 'organization_id')`.execute(testDb.current.database.db);
    expect(rows).toEqual([]);
  });
});

describe('readiness', () => {
  it('answers 503 in the error shape when the database does not answer', async () => {
    const server = await startTestServer();
    try {
      expect((await server.api('GET', '/readyz', { key: null })).status).toBe(200);
      await server.database.close();
      const response = await server.api('GET', '/readyz', { key: null });
      expect(response.status).toBe(503);
      expect(response.body.error).toMatchObject({
        code: 'service_unavailable',
        request_id: expect.any(String),
      });
      expect((await server.api('GET', '/healthz', { key: null })).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe.runIf(process.env.DATABASE_URL && !process.env.DATABASE_DIRECT_URL)(
  'prepared statements (PostgreSQL)',
  () => {
    const testDb = withTestDatabase();

    it('a parameterised query runs as a named statement, prepared once per connection', async () => {
      await testDb.current.database.db.connection().execute(async (db) => {
        const text = 'select $1::int + 1 as n';
        const results = [];
        for (const value of [1, 41])
          results.push((await sql<{ n: number }>`select ${value}::int + 1 as n`.execute(db)).rows);
        expect(results).toEqual([[{ n: 2 }], [{ n: 42 }]]);
        const { rows } = await sql<{ name: string }>`
          select name from pg_prepared_statements where statement = ${text}`.execute(db);
        expect(rows).toEqual([{ name: expect.stringMatching(/^roster_/) }]);
        // A failing execution of a named statement rejects with PostgreSQL's error, and the
        // connection serves the next query.
        await expect(sql`select ${'x'}::int as n`.execute(db)).rejects.toMatchObject({ code: '22P02' });
        expect((await sql<{ n: number }>`select ${2}::int + 1 as n`.execute(db)).rows).toEqual([{ n: 3 }]);
      });
    });
  },
);

describe.runIf(process.env.DATABASE_URL)('conflicts between transactions (PostgreSQL)', () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a deadlock victim is run again, and both transactions commit', async () => {
    const made = await Promise.all(
      ['Deadlock A', 'Deadlock B'].map(
        async (name) => (await server.api('POST', '/v1/organizations', { body: { name } })).body.id as string,
      ),
    );
    const [first, second] = made as [string, string];
    // Each transaction locks one row, waits until the other holds its row, then asks for the
    // other's: a lock cycle, so PostgreSQL rolls one back with 40P01. Without the retry in
    // ctx.transaction that error reached the caller.
    const holding: Array<() => void> = [];
    const bothHold = Promise.all([0, 1].map((i) => new Promise<void>((resolve) => (holding[i] = resolve))));
    const attempts = [0, 0];
    const cross = (i: number, mine: string, theirs: string) =>
      server.ctx.transaction(async (trx) => {
        attempts[i]! += 1;
        await sql`update organizations set name = name where id = ${mine}`.execute(trx);
        holding[i]!();
        await bothHold;
        await sql`update organizations set name = ${`Deadlock ${i} wins`} where id = ${theirs}`.execute(trx);
        return i;
      });
    await expect(Promise.all([cross(0, first, second), cross(1, second, first)])).resolves.toEqual([0, 1]);
    expect(attempts[0]! + attempts[1]!).toBe(3);
  });
});
