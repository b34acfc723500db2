import { createHmac } from 'node:crypto';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import { lockOrganizationForShare } from '../directory/organizations.js';
import { appendEvents } from '../events/outbox.js';
import { digestsEqual, hashSecret, newId, newSecret } from '../ids.js';
import { setActor, withActor } from './actor.js';

/** A link works for this long unless opened (issue 15: five minutes). */
export const PORTAL_LINK_TTL_MS = 5 * 60_000;

export interface PortalLinkInput {
  intent: 'directory_sync';
  return_url?: string | undefined;
}

/** Creates a one-time portal link; only the SHA-256 of its token is stored. */
export async function createPortalLink(
  ctx: Context,
  organizationId: string,
  input: PortalLinkInput,
): Promise<Schemas['PortalLink']> {
  const token = newSecret('portalLink');
  return ctx.transaction(async (trx) => {
    await lockOrganizationForShare(trx, organizationId);
    const now = ctx.now();
    const expiresAt = new Date(now.getTime() + PORTAL_LINK_TTL_MS);
    const id = newId('portalLink', now.getTime());
    await trx
      .insertInto('portal_links')
      .values({
        id,
        organization_id: organizationId,
        token_hash: hashSecret(token),
        intent: input.intent,
        return_url: input.return_url ?? null,
        created_at: now,
        expires_at: expiresAt,
      })
      .execute();
    await appendEvents(trx, [
      {
        type: 'portal.link_created',
        organizationId,
        data: {
          object: 'portal_link',
          id,
          organization_id: organizationId,
          intent: input.intent,
          return_url: input.return_url ?? null,
          expires_at: expiresAt.toISOString(),
        },
      },
    ]);
    return {
      object: 'portal_link',
      url: `${ctx.settings.publicUrl}/portal/start?token=${encodeURIComponent(token)}`,
      expires_at: expiresAt.toISOString(),
    };
  });
}

export interface PortalSession {
  id: string;
  organizationId: string;
  organizationName: string;
  returnUrl: string | null;
  expiresAt: Date;
  /** Derived from the session secret: the CSRF token of this session's forms. */
  csrfToken: string;
}

/** Why a link did not open: each gets the same "ask the app for a new link" page. */
export type LinkRefusal = 'unknown' | 'used' | 'expired';

const csrfOf = (sessionSecret: string) =>
  createHmac('sha256', sessionSecret).update('roster portal csrf').digest('base64url');

/**
 * Exchanges a link token for a portal session. The link is claimed by one conditional update (a
 * second opening, even a concurrent one, finds it used), and the session is created with its
 * `portal.session_started` event in the same transaction.
 */
export async function openPortalLink(
  ctx: Context,
  token: string,
): Promise<{ secret: string; session: PortalSession } | { refused: LinkRefusal }> {
  const digest = hashSecret(token);
  const secret = newSecret('portalSession');
  return ctx.transaction(async (trx) => {
    const now = ctx.now();
    const claimed = await trx
      .updateTable('portal_links')
      .set({ used_at: now })
      .where('token_hash', '=', digest)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .returningAll()
      .executeTakeFirst();
    if (!claimed || !digestsEqual(claimed.token_hash, digest)) {
      const link = await trx
        .selectFrom('portal_links')
        .select(['used_at', 'expires_at'])
        .where('token_hash', '=', digest)
        .executeTakeFirst();
      return { refused: !link ? 'unknown' : link.used_at ? 'used' : 'expired' };
    }
    const id = newId('portalSession', now.getTime());
    const expiresAt = new Date(now.getTime() + ctx.settings.portalSessionTtlMs);
    await trx
      .insertInto('portal_sessions')
      .values({
        id,
        organization_id: claimed.organization_id,
        link_id: claimed.id,
        token_hash: hashSecret(secret),
        return_url: claimed.return_url,
        created_at: now,
        expires_at: expiresAt,
      })
      .execute();
    const organization = await trx
      .selectFrom('organizations')
      .select('name')
      .where('id', '=', claimed.organization_id)
      .executeTakeFirstOrThrow();
    await setActor(trx, { type: 'portal', portal_session_id: id });
    await appendEvents(trx, [
      {
        type: 'portal.session_started',
        organizationId: claimed.organization_id,
        data: {
          object: 'portal_session',
          id,
          organization_id: claimed.organization_id,
          portal_link_id: claimed.id,
          expires_at: expiresAt.toISOString(),
        },
      },
    ]);
    return {
      secret,
      session: {
        id,
        organizationId: claimed.organization_id,
        organizationName: organization.name,
        returnUrl: claimed.return_url,
        expiresAt,
        csrfToken: csrfOf(secret),
      },
    };
  });
}

/** The live portal session a cookie secret belongs to, or undefined (unknown or expired). */
export async function findPortalSession(ctx: Context, secret: string): Promise<PortalSession | undefined> {
  const digest = hashSecret(secret);
  const row = await ctx.db
    .selectFrom('portal_sessions as s')
    .innerJoin('organizations as o', 'o.id', 's.organization_id')
    .select(['s.id', 's.token_hash', 's.organization_id', 's.return_url', 's.expires_at', 'o.name'])
    .where('s.token_hash', '=', digest)
    .executeTakeFirst();
  if (!row || !digestsEqual(row.token_hash, digest)) return undefined;
  if (row.expires_at.getTime() <= ctx.now().getTime()) return undefined;
  return {
    id: row.id,
    organizationId: row.organization_id,
    organizationName: row.name,
    returnUrl: row.return_url,
    expiresAt: row.expires_at,
    csrfToken: csrfOf(secret),
  };
}

/** Compares a submitted CSRF token with the session's, in constant time. */
export function csrfTokenMatches(session: PortalSession, submitted: unknown): boolean {
  if (typeof submitted !== 'string' || submitted.length === 0) return false;
  return digestsEqual(hashSecret(session.csrfToken), hashSecret(submitted));
}

/** The service context of a portal session's changes: events carry the portal as their actor. */
export function portalContext(ctx: Context, session: PortalSession): Context {
  return withActor(ctx, { type: 'portal', portal_session_id: session.id });
}

/** Deletes ended portal sessions and links expired a day ago (their sessions go with them). */
export async function purgePortal(ctx: Context): Promise<void> {
  const now = ctx.now();
  await ctx.db.deleteFrom('portal_sessions').where('expires_at', '<', now).execute();
  await ctx.db
    .deleteFrom('portal_links')
    .where('expires_at', '<', new Date(now.getTime() - 86_400_000))
    .execute();
}
