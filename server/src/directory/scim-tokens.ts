import type { Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { ConnectionRow, DB } from '../db/schema.js';
import { notFound } from '../errors.js';
import { digestsEqual, hashSecret, newId, newSecret, secretHint } from '../ids.js';
import type { ScimPrincipal } from '../scim-principal.js';

/*
 * SCIM bearer tokens: issued with a connection, rotated with a grace period, and authenticated on
 * every SCIM request. Tokens are stored as SHA-256 digests with a short hint, never in clear.
 * Checks are cached per process in `ctx.scimAuthCache` (a TtlCache, 1 s by default), so that an
 * IdP's burst of requests does not cost a database round trip each; a busy token is checked again
 * in the background before its entry expires (TtlCache.load), so no request waits for the check. Changes made in this process
 * (rotation, connection or organization deletion, attribute mappings) clear it at once; on other
 * server processes a revoked token keeps working for at most the TTL. Token expiry (rotation
 * grace) is still checked against the injected clock.
 */

/** Issues a SCIM token for `connection` inside the caller's transaction; returns it in clear, once. */
export async function insertScimToken(
  trx: Transaction<DB>,
  connection: ConnectionRow,
  now: Date,
): Promise<string> {
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
      .where('state', '<>', 'deleted')
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
  // Read through the cache: requests that miss together share one lookup, and a busy token is
  // checked again in the background before its entry expires, so no request waits for it.
  const check = await ctx.scimAuthCache.load(`${connectionId}:${digest}`, async () => {
    const found = await lookUpScimToken(ctx, connectionId, digest, ctx.now());
    return { principal: found?.principal, tokenExpiresAt: found?.expiresAt?.getTime() ?? null };
  });
  if (check.tokenExpiresAt !== null && check.tokenExpiresAt <= ctx.now().getTime()) return undefined;
  return check.principal;
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
    // A held connection still syncs: only its deprovisions are refused (deprovision-guard.ts).
    .where('c.state', '<>', 'deleted')
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
