import type { Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { AttributeMapping, ConnectionRow, DB } from '../db/schema.js';
import { notFound } from '../errors.js';
import { appendEvents } from '../events/outbox.js';
import { digestsEqual, hashSecret, newId, newSecret, secretHint } from '../ids.js';
import { toConnection } from './serialize.js';

export interface ConnectionInput {
  name: string;
  provider: string;
}

/** A SCIM token row as the request path needs it. */
export interface ScimPrincipal {
  connectionId: string;
  organizationId: string;
  provider: string;
  /** Which SCIM attributes land in membership.metadata (see user-attributes.ts). */
  attributeMappings: AttributeMapping[];
}

async function insertScimToken(trx: Transaction<DB>, connection: ConnectionRow, now: Date): Promise<string> {
  const token = newSecret('scimToken');
  await trx
    .insertInto('scim_tokens')
    .values({
      id: newId('scimToken', now.getTime()),
      organization_id: connection.organization_id,
      connection_id: connection.id,
      token_hash: hashSecret(token),
      hint: secretHint(token),
      created_at: now,
    })
    .execute();
  return token;
}

/** Creates a connection and its first SCIM token; the token is returned once and stored hashed. */
export async function createConnection(
  ctx: Context,
  organizationId: string,
  input: ConnectionInput,
): Promise<{ connection: ConnectionRow; token: string }> {
  return ctx.transaction(async (trx) => {
    const organization = await trx
      .selectFrom('organizations')
      .select('id')
      .where('id', '=', organizationId)
      .forShare()
      .executeTakeFirst();
    if (!organization) throw notFound('organization', organizationId);
    const now = ctx.now();
    const connection = await trx
      .insertInto('connections')
      .values({
        id: newId('connection', now.getTime()),
        organization_id: organizationId,
        name: input.name,
        provider: input.provider,
        attribute_mappings: '[]',
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const token = await insertScimToken(trx, connection, now);
    await appendEvents(trx, [
      {
        type: 'connection.created',
        organizationId,
        data: toConnection(connection, ctx.settings.publicUrl),
      },
    ]);
    return { connection, token };
  });
}

export async function getConnection(ctx: Context, id: string): Promise<ConnectionRow> {
  const row = await ctx.db.selectFrom('connections').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('connection', id);
  return row;
}

/**
 * Issues a new SCIM token. Tokens issued before stay valid for `graceMs` (never longer than they
 * already had), so the IdP can be switched over without failed syncs; `graceMs = 0` ends them now.
 */
export async function rotateScimToken(
  ctx: Context,
  connectionId: string,
  graceMs: number = ctx.settings.scimTokenGraceMs,
): Promise<{ connection: ConnectionRow; token: string; previousExpireAt: Date }> {
  const result = await ctx.transaction(async (trx) => {
    const connection = await trx
      .selectFrom('connections')
      .selectAll()
      .where('id', '=', connectionId)
      .where('state', '=', 'active')
      .forUpdate()
      .executeTakeFirst();
    if (!connection) throw notFound('connection', connectionId);
    const now = ctx.now();
    const previousExpireAt = new Date(now.getTime() + graceMs);
    await trx
      .updateTable('scim_tokens')
      .set({ expires_at: previousExpireAt })
      .where('connection_id', '=', connectionId)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', previousExpireAt)]))
      .execute();
    const token = await insertScimToken(trx, connection, now);
    return { connection, token, previousExpireAt };
  });
  ctx.scimAuthCache.clear();
  return result;
}

interface CachedAuth {
  principal: ScimPrincipal | undefined;
  tokenExpiresAt: number | null;
  cachedUntil: number;
}

/**
 * A short-lived, per-process cache of SCIM token checks, so that an IdP's burst of requests does
 * not cost a database round trip each. Bounded: entries live `ttlMs` (1 s), the map is cleared
 * past 10,000 entries. Changes made in this process (rotation, connection or organization
 * deletion) invalidate at once; on other server processes a revoked token keeps working for at
 * most `ttlMs`. Token expiry (rotation grace) is still checked against the injected clock.
 */
export class ScimAuthCache {
  readonly #ttlMs: number;
  readonly #entries = new Map<string, CachedAuth>();

  constructor(ttlMs = 1000) {
    this.#ttlMs = ttlMs;
  }

  get(key: string): CachedAuth | undefined {
    const entry = this.#entries.get(key);
    if (entry && entry.cachedUntil > performance.now()) return entry;
    if (entry) this.#entries.delete(key);
    return undefined;
  }

  set(key: string, principal: ScimPrincipal | undefined, tokenExpiresAt: Date | null): void {
    if (this.#ttlMs <= 0) return;
    if (this.#entries.size >= 10_000) this.#entries.clear();
    this.#entries.set(key, {
      principal,
      tokenExpiresAt: tokenExpiresAt?.getTime() ?? null,
      cachedUntil: performance.now() + this.#ttlMs,
    });
  }

  /** Forgets every cached check (after a rotation or deletion in this process). */
  clear(): void {
    this.#entries.clear();
  }
}

/**
 * Resolves a SCIM bearer token for one connection. The token must belong to that connection (a
 * token never reaches another connection's data), be unexpired, and the connection be active.
 * Tokens are looked up by their SHA-256, then compared in constant time.
 */
export async function authenticateScimToken(
  ctx: Context,
  connectionId: string,
  token: string,
): Promise<ScimPrincipal | undefined> {
  const digest = hashSecret(token);
  const now = ctx.now();
  const cacheKey = `${connectionId}:${digest}`;
  const cached = ctx.scimAuthCache.get(cacheKey);
  if (cached) {
    if (cached.tokenExpiresAt !== null && cached.tokenExpiresAt <= now.getTime()) return undefined;
    return cached.principal;
  }
  const principal = await lookUpScimToken(ctx, connectionId, digest, now);
  ctx.scimAuthCache.set(cacheKey, principal?.principal, principal?.expiresAt ?? null);
  return principal?.principal;
}

async function lookUpScimToken(
  ctx: Context,
  connectionId: string,
  digest: string,
  now: Date,
): Promise<{ principal: ScimPrincipal | undefined; expiresAt: Date | null } | undefined> {
  const row = await ctx.db
    .selectFrom('scim_tokens as t')
    .innerJoin('connections as c', 'c.id', 't.connection_id')
    .select([
      't.id',
      't.token_hash',
      't.expires_at',
      't.last_used_at',
      'c.id as connection_id',
      'c.organization_id',
      'c.provider',
      'c.attribute_mappings',
    ])
    .where('t.token_hash', '=', digest)
    .where('t.connection_id', '=', connectionId)
    .where('c.state', '=', 'active')
    .executeTakeFirst();
  if (!row || !digestsEqual(row.token_hash, digest)) return undefined;
  if (row.expires_at !== null && row.expires_at.getTime() <= now.getTime()) return undefined;
  const principal: ScimPrincipal = {
    connectionId: row.connection_id,
    organizationId: row.organization_id,
    provider: row.provider,
    attributeMappings: row.attribute_mappings,
  };
  // Record use at most once a minute: enough to tell an operator which token an IdP still uses.
  if (row.last_used_at === null || now.getTime() - row.last_used_at.getTime() > 60_000) {
    void ctx.db
      .updateTable('scim_tokens')
      .set({ last_used_at: now })
      .where('id', '=', row.id)
      .execute()
      .catch((error: unknown) => ctx.log.warn({ err: error }, 'could not record SCIM token use'));
  }
  return { principal, expiresAt: row.expires_at };
}
