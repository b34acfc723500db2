import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

/** The smallest SQL surface the mirror needs, over PostgreSQL (`pg`) or an embedded PGlite. */
export interface Store {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /** Runs `fn` in one transaction (the batch and the cursor commit together). */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export async function openStore(url: string | undefined, dataDir?: string): Promise<Store> {
  if (url) {
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    const over = (client: pg.Pool | pg.PoolClient): Store => ({
      query: async (text, params) => (await client.query(text, params)).rows,
      transaction: async (fn) => {
        const connection = await pool.connect();
        try {
          await connection.query('begin');
          const result = await fn(over(connection));
          await connection.query('commit');
          return result;
        } catch (error) {
          await connection.query('rollback');
          throw error;
        } finally {
          connection.release();
        }
      },
      close: () => pool.end(),
    });
    return over(pool);
  }
  const db = new PGlite(dataDir);
  const over = (q: Pick<PGlite, 'query'>): Store => ({
    query: async (text, params) => (await q.query(text, params)).rows as never,
    transaction: (fn) => db.transaction((tx) => fn(over(tx))),
    close: () => db.close(),
  });
  return over(db);
}

export async function migrate(store: Store): Promise<void> {
  for (const statement of [
    `create table if not exists mirror_organizations (id text primary key, name text not null, slug text not null)`,
    `create table if not exists mirror_roles (key text primary key, name text not null, permissions jsonb not null)`,
    `create table if not exists mirror_memberships (
       id text primary key, organization_id text not null, user_id text not null, email text,
       role text not null, status text not null)`,
    `create table if not exists mirror_cursor (id integer primary key check (id = 1), cursor text not null)`,
  ]) {
    await store.query(statement);
  }
}
