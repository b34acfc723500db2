import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compiledOnce } from '../src/db/sql.js';
import { createTestDatabase, type TestDatabase } from './harness.js';

/** db/sql.ts compiledOnce on the real database: one template, new values on every execution. */
describe('compiledOnce', () => {
  let test: TestDatabase;
  beforeAll(async () => {
    test = await createTestDatabase();
    await sql`create table compiled_once (id text primary key, name text not null)`.execute(test.database.db);
  });
  afterAll(async () => {
    await test.database.close();
    await test.drop();
  });

  it('runs one compiled template with the values of each call, per shape', async () => {
    const { db } = test.database;
    let builds = 0;
    const echo = compiledOnce((_db, p: { a: string; b: number }, shape) => {
      builds++;
      return shape === 'sum'
        ? sql<{ a: string; b: number }>`select ${p.a}::text as a, ${p.b}::int + 1 as b`
        : sql<{ a: string; b: number }>`select ${p.a}::text as a, ${p.b}::int as b`;
    });
    expect((await echo(db, { a: 'x', b: 1 })).rows).toEqual([{ a: 'x', b: 1 }]);
    expect((await echo(db, { a: 'y', b: 2 })).rows).toEqual([{ a: 'y', b: 2 }]);
    expect((await echo(db, { a: 'z', b: 3 }, 'sum')).rows).toEqual([{ a: 'z', b: 4 }]);
    expect((await echo(db, { a: 'w', b: 5 }, 'sum')).rows).toEqual([{ a: 'w', b: 6 }]);
    expect(builds).toBe(2);
  });

  it('keys a shape of flags by its key function: one template per variant, a misspelt flag a type error', async () => {
    const { db } = test.database;
    const seen: { negate: boolean; double: boolean }[] = [];
    const value = compiledOnce(
      (_db, p: { n: number }, shape: { negate: boolean; double: boolean }) => {
        seen.push(shape);
        const n = shape.double ? sql`${p.n}::int * 2` : sql`${p.n}::int`;
        return sql<{ n: number }>`select ${shape.negate ? sql`-${n}` : n} as n`;
      },
      ({ negate, double }) => `${negate ? 'negate' : ''} ${double ? 'double' : ''}`,
    );
    expect((await value(db, { n: 3 }, { negate: true, double: true })).rows).toEqual([{ n: -6 }]);
    expect((await value(db, { n: 4 }, { negate: true, double: true })).rows).toEqual([{ n: -8 }]);
    expect((await value(db, { n: 4 }, { double: true, negate: false })).rows).toEqual([{ n: 8 }]);
    expect((await value(db, { n: 5 }, { negate: false, double: false })).rows).toEqual([{ n: 5 }]);
    expect(seen).toEqual([
      { negate: true, double: true },
      { double: true, negate: false },
      { negate: false, double: false },
    ]);
    // @ts-expect-error: a misspelt flag does not compile (it was a string of flags before).
    await expect(value(db, { n: 1 }, { negate: true, dubble: true })).resolves.toBeDefined();
  });

  it('takes query builders, and runs them inside a transaction too', async () => {
    const { db } = test.database;
    // A table of the test's own, outside the typed schema.
    const byId = compiledOnce((d, p: { id: string }) =>
      (d as unknown as Kysely<{ compiled_once: { id: string; name: string } }>)
        .selectFrom('compiled_once')
        .select(['id', 'name'])
        .where('id', '=', p.id),
    );
    expect((await byId(db, { id: 'missing' })).rows).toEqual([]);
    const rows = await db.transaction().execute(async (trx) => {
      await sql`insert into compiled_once (id, name) values ('a', 'first'), ('b', 'second')`.execute(trx);
      return [(await byId(trx, { id: 'a' })).rows, (await byId(trx, { id: 'b' })).rows];
    });
    expect(rows).toEqual([[{ id: 'a', name: 'first' }], [{ id: 'b', name: 'second' }]]);
  });

  it('refuses a value computed inside the builder: it would be frozen into the template', async () => {
    const { db } = test.database;
    const stamped = compiledOnce(
      (_db, p: { a: string }) => sql`select ${p.a}::text as a, ${new Date().toISOString()}::text as at`,
    );
    await expect(stamped(db, { a: 'x' })).rejects.toThrow(/not from params/);
  });
});
