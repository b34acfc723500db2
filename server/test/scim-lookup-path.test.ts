import {
  DummyDriver,
  Kysely,
  type KyselyPlugin,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
} from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DB } from '../src/db/schema.js';
import { groupFilter, userFilter } from '../src/directory/scim-filter-sql.js';
import { TtlCache } from '../src/lib/ttl-cache.js';
import { SharedRateLimiter } from '../src/rate-limit.js';
import { parseFilter } from '../src/scim/filter/parse.js';
import { startTestServer, type TestServer } from './harness.js';
import { createConnection, userBody } from './scim-helpers.js';

/**
 * What an IdP's lookup (`GET /Users?filter=userName eq "…"`) waits for besides its own statement:
 * the token check, the rate-limit lease, and the building of its statement.
 */

/** Compiles without a database (kysely's "cold" setup), to compare SQL text. */
const cold = new Kysely<DB>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

describe('filter shapes (statements compiled once per shape)', () => {
  const shaped = [
    'userName eq "alice@example.com"',
    'USERNAME eq "Alice@Example.com"',
    'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"',
    'externalId eq "00u1" and userName ne "b"',
    'not (displayName gt "m") or name.givenName le "x"',
    'id eq "user_1"',
  ];

  it('write the same SQL as the filter compiled with its values', () => {
    for (const text of shaped) {
      const filter = parseFilter(text);
      const { sql, shape } = userFilter(filter);
      expect(shape, text).toBeDefined();
      const direct = sql.compile(cold);
      const viaShape = shape!.sql(shape!.values).compile(cold);
      expect(viaShape.sql, text).toBe(direct.sql);
      expect(viaShape.parameters, text).toEqual(direct.parameters);
    }
    const group = parseFilter('displayName eq "Engineering"');
    const compiled = groupFilter(group);
    const shape = compiled.shape!;
    expect(shape.sql(shape.values).compile(cold).sql).toBe(compiled.sql.compile(cold).sql);
  });

  it('tell apart what changes the SQL text, and leave out filters whose text depends on the values', () => {
    const key = (text: string) => userFilter(parseFilter(text)).shape?.key;
    expect(key('userName eq "a"')).toBe(key('userName eq "b"'));
    expect(key('userName eq "a"')).not.toBe(key('externalId eq "a"'));
    expect(key('userName eq "a"')).not.toBe(key('userName ne "a"'));
    expect(key('userName eq "a" and id eq "b"')).not.toBe(key('userName eq "a" or id eq "b"'));
    for (const text of [
      'userName co "a"',
      'userName sw "a"',
      'userName pr',
      'userName eq null',
      'active eq true',
      'meta.created gt "2026-01-01T00:00:00Z"',
      'emails[type eq "work"]',
      'emails.value eq "a@b.c"',
      'groups eq "group_1"',
      'userName eq "a" and active eq true',
      'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x"',
    ]) {
      expect(key(text), text).toBeUndefined();
    }
  });
});

describe('TtlCache.load', () => {
  const deferred = <T>() => {
    let resolve!: (value: T) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };

  it('shares one load among the callers that miss together', async () => {
    const cache = new TtlCache<string>(1000, 10, () => 0);
    const load = deferred<string>();
    let loads = 0;
    const loader = () => {
      loads++;
      return load.promise;
    };
    const waiting = Array.from({ length: 16 }, () => cache.load('k', loader));
    load.resolve('v');
    expect(await Promise.all(waiting)).toEqual(Array(16).fill('v'));
    expect(loads).toBe(1);
    expect(cache.load('k', loader)).toBe('v');
    expect(loads).toBe(1);
  });

  it('reloads in the background in the last quarter of the TTL, never serves past the TTL from the load', async () => {
    let now = 0;
    const cache = new TtlCache<number>(1000, 10, () => now);
    let version = 1;
    const pending: ((value: number) => void)[] = [];
    const loader = () => new Promise<number>((resolve) => pending.push(resolve));
    const first = cache.load('k', loader);
    pending.shift()!(version);
    expect(await first).toBe(1);
    now = 700; // not yet in the last quarter
    expect(cache.load('k', loader)).toBe(1);
    expect(pending).toHaveLength(0);
    now = 800; // last quarter: the old value answers at once, one reload starts
    expect(cache.load('k', loader)).toBe(1);
    expect(cache.load('k', loader)).toBe(1);
    expect(pending).toHaveLength(1);
    version = 2;
    pending.shift()!(version);
    await Promise.resolve();
    await Promise.resolve();
    expect(cache.load('k', loader)).toBe(2);
    // The reload started at 800: it lives until 1800, not 1000 after it finished.
    now = 1799;
    expect(cache.load('k', loader)).toBe(2);
    now = 1800;
    const expired = cache.load('k', loader);
    expect(expired).toBeInstanceOf(Promise);
    pending.shift()!(3);
    expect(await expired).toBe(3);
  });

  it('does not store what a load started before clear() read', async () => {
    const cache = new TtlCache<string>(1000, 10, () => 0);
    const stale = deferred<string>();
    const before = cache.load('k', () => stale.promise);
    cache.clear(); // say, the token was rotated meanwhile
    const after = cache.load('k', async () => 'fresh');
    stale.resolve('stale');
    expect(await before).toBe('stale');
    expect(await after).toBe('fresh');
    expect(cache.load('k', async () => 'again')).toBe('fresh');
  });

  it('caches no failure: the next caller loads again', async () => {
    const cache = new TtlCache<string>(1000, 10, () => 0);
    await expect(cache.load('k', async () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(await cache.load('k', async () => 'up')).toBe('up');
  });
});

describe('on a server', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  /**
   * The server's database handle, counting statements; each answer arrives a timer tick late, as
   * over a network (the embedded database can answer within microtasks).
   */
  function distant() {
    const counter = { statements: 0 };
    const plugin: KyselyPlugin = {
      transformQuery(args) {
        counter.statements++;
        return args.node;
      },
      transformResult: async (args) => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        return args.result;
      },
    };
    return { db: server.ctx.db.withPlugin(plugin), counter };
  }

  it('a busy connection leases ahead: its requests do not queue behind each lease statement', async () => {
    const { db, counter } = distant();
    // A frozen clock: leases lapse only by being spent, and grow (1, 2, 4, … up to 1,000).
    const limiter = new SharedRateLimiter(db, 'ahead', 10_000, () => 0);
    let waited = 0;
    for (let i = 0; i < 4000; i++) {
      const take = limiter.take('busy');
      // A take that spends a leased token settles within microtasks, before setImmediate runs;
      // one that waits for a lease statement (answered a timer tick later) does not.
      const early = await Promise.race([
        take,
        new Promise((resolve) => setImmediate(() => resolve('waited'))),
      ]);
      if (early === 'waited') waited++;
      expect(await take).toBe(0);
      // Requests arrive spaced out, as an IdP's do; the lease statement runs meanwhile.
      if (i % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    // Leases of 1, 2, 4, …, 512 and then 1,000 tokens: 13, each waited for when leases were
    // taken only once spent (measured: 13 waits). Now only the first ones are.
    expect(waited).toBeLessThanOrEqual(4);
    expect(counter.statements).toBeLessThan(30);
  });

  it('a lease refused ahead is asked for once, not by every request of the lease it follows', async () => {
    const refuse = { on: false };
    const counter = { statements: 0 };
    // The shared budget as other processes leave it: once `refuse.on`, every lease is refused.
    const plugin: KyselyPlugin = {
      transformQuery(args) {
        counter.statements++;
        return args.node;
      },
      transformResult: async (args) => (refuse.on ? { ...args.result, rows: [] } : args.result),
    };
    const limiter = new SharedRateLimiter(server.ctx.db.withPlugin(plugin), 'refused-ahead', 10_000, () => 0);
    // A frozen clock: leases grow (1, 2, 4, …, 512) and lapse only by being spent.
    for (let i = 0; i < 600; i++) expect(await limiter.take('busy')).toBe(0);
    refuse.on = true;
    const before = counter.statements;
    let spent = 0;
    // Requests arrive spaced out, so that each refused lease statement answers before the next.
    while ((await limiter.take('busy')) === 0) {
      spent++;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    // The tokens in hand are spent to the end; then the first refusal answers 429. Asking ahead
    // again on each request of the lease's last quarter sent two statements per request.
    expect(spent).toBeGreaterThan(0);
    expect(counter.statements - before).toBeLessThanOrEqual(6);
  });

  it('a lookup is answered right, with its statement compiled once, for users and groups', async () => {
    const c = await createConnection(server, 'okta');
    for (const name of ['Shape.One@x.com', 'shape.two@x.com']) {
      expect((await c.scim('POST', '/Users', { body: userBody(name) })).status).toBe(201);
    }
    const find = async (filter: string) => {
      const res = await c.scim('GET', `/Users?filter=${encodeURIComponent(filter)}`);
      expect(res.status).toBe(200);
      return res.body as { totalResults: number; Resources: { userName: string }[] };
    };
    // The same shape twice (the second from the compiled template), then another value.
    for (let i = 0; i < 2; i++) {
      const one = await find('userName eq "shape.one@X.com"');
      expect(one.totalResults).toBe(1);
      expect(one.Resources.map((r) => r.userName)).toEqual(['Shape.One@x.com']);
    }
    expect((await find('userName eq "shape.two@x.com"')).Resources.map((r) => r.userName)).toEqual([
      'shape.two@x.com',
    ]);
    expect((await find('userName eq "nobody@x.com"')).totalResults).toBe(0);
    const both = await find('userName eq "shape.one@x.com" or userName eq "shape.two@x.com"');
    expect(both.totalResults).toBe(2);
    const limited = await c.scim(
      'GET',
      `/Users?filter=${encodeURIComponent('userName ne "nobody"')}&count=1`,
    );
    expect(limited.body.Resources).toHaveLength(1);
    expect(limited.body.totalResults).toBe(2);
    const group = await c.scim('POST', '/Groups', { body: { displayName: 'Shape group' } });
    expect(group.status).toBe(201);
    const groups = await c.scim(
      'GET',
      `/Groups?filter=${encodeURIComponent('displayName eq "shape GROUP"')}`,
    );
    expect(groups.body.Resources.map((g: { id: string }) => g.id)).toEqual([group.body.id]);
  });

  it('filters of ever new shapes are still answered right once no more shapes are kept', async () => {
    const c = await createConnection(server, 'okta');
    expect((await c.scim('POST', '/Users', { body: userBody('many.shapes@x.com') })).status).toBe(201);
    // 80 shapes (1 to 80 alternatives), more than are compiled once: the rest are compiled each time.
    for (let n = 1; n <= 80; n++) {
      const alternatives = Array.from({ length: n }, (_, i) => `userName eq "other${i}@x.com"`);
      alternatives.push('userName eq "many.shapes@x.com"');
      const res = await c.scim('GET', `/Users?filter=${encodeURIComponent(alternatives.join(' or '))}`);
      expect(res.status).toBe(200);
      expect(res.body.Resources.map((r: { userName: string }) => r.userName)).toEqual(['many.shapes@x.com']);
    }
  });
});
