import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * A throwaway PostgreSQL database next to the one DATABASE_URL names, for one test file or one
 * benchmark run. The admin URL's role needs CREATEDB.
 *
 * When DATABASE_DIRECT_URL is set too, DATABASE_URL is a transaction-mode pooler in front of the
 * same server (scripts/with-pgbouncer.sh): the scratch database is then reached through the
 * pooler, with a direct URL for LISTEN, and created and dropped directly.
 */
export interface ScratchDatabase {
  name: string;
  url: string;
  /** The same database without the pooler, when `url` goes through one. */
  directUrl: string | undefined;
  /** The variables a server process needs to use this database. */
  env: Record<string, string>;
  drop(): Promise<void>;
}

export async function createScratchDatabase(
  adminUrl: string,
  prefix: string,
  directAdminUrl: string | undefined = process.env.DATABASE_DIRECT_URL || undefined,
): Promise<ScratchDatabase> {
  const name = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const ddlUrl = directAdminUrl ?? adminUrl;
  await withClient(ddlUrl, (client) => client.query(`create database ${name}`));
  const url = withDatabase(adminUrl, name);
  const directUrl = directAdminUrl && withDatabase(directAdminUrl, name);
  return {
    name,
    url,
    directUrl,
    env: directUrl ? { DATABASE_URL: url, DATABASE_DIRECT_URL: directUrl } : { DATABASE_URL: url },
    drop: () => dropDatabase(ddlUrl, name),
  };
}

function withDatabase(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * `drop database … with (force)` ends the sessions still connected, but only those of roles the
 * caller may signal: an autovacuum worker busy in the database after a bulk load makes it fail
 * with 42501 (seen after the 10,000-user benchmark, which then lost its results). Such a worker
 * ends within moments: retry for a while, then give up with the error.
 */
async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await withClient(adminUrl, (client) => client.query(`drop database if exists ${name} with (force)`));
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      const transient = code === '42501' || code === '55006'; // cannot signal / still in use
      if (!transient || attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}
