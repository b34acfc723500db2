import type { EventListParams, EventsResource } from '../events.js';
import type { RevocationCheck, SessionClaims } from './verify.js';

export interface RevocationListOptions {
  /** The client's `events` (from createRoster, with the secret key: the feed is management data). */
  events: EventsResource;
  /**
   * How far back to read revocations at start, and how long to remember a revocation whose event
   * does not say when its last token expires. At least ROSTER_SESSION_TTL. Default 3600 s.
   */
  lookbackSeconds?: number;
  /** Long-poll seconds (default 20). */
  waitSeconds?: number;
  /** Called when following the feed fails (it retries with backoff). */
  onError?: (error: unknown) => void;
  /** Milliseconds since the epoch (tests). */
  now?: () => number;
}

interface RevokedSession {
  /** Forget the entry after this: every token of the session has expired by then. */
  until: number;
}

/** A member's role as of its last change: tokens with another role are stale. */
interface MemberRole {
  role: string;
  until: number;
}

/** A role's permissions as of its last change: tokens of that role with others are stale. */
interface RolePermissions {
  permissions: ReadonlySet<string>;
  until: number;
}

interface RevokedUser {
  /** Tokens issued (iat, seconds) before this are rejected. */
  before: number;
  until: number;
}

/**
 * Immediate revocation for the session middleware. Session tokens are short-lived (60 s by
 * default), so a revoked session would otherwise stay usable until its token expires; this list
 * follows the events feed (`session.revoked`, plus `user.deactivated` and `user.deleted`) and makes
 * the verifier reject such tokens within about a second of the revocation.
 *
 * Role and permission changes too: `membership.updated` (a mapping change, a group change, a
 * pinned role) gives a member's new role, `role.updated` a role's new permissions; a token that
 * carries another role or other permissions is then stale (`role_changed`), and the middleware
 * refreshes it (with session cookies) to one with the new ones. The comparison is by content, not
 * by time: a token issued a moment after the change from data read a moment before it is still
 * caught, and a refreshed token passes at once.
 *
 * Memory is bounded by the revocations of one token lifetime: each entry is dropped when the last
 * token it could concern has expired (`session.revoked` events carry `token_expires_at`).
 *
 * @example
 * ```ts
 * const revocations = createRevocationList({ events: roster.events });
 * await revocations.start(); // reads the last hour of revocations, then follows the feed
 * app.use(requireSession({ baseUrl, revocations }));
 * ```
 */
export function createRevocationList(options: RevocationListOptions) {
  const now = options.now ?? Date.now;
  const lookbackMs = (options.lookbackSeconds ?? 3600) * 1000;
  const sessions = new Map<string, RevokedSession>();
  const users = new Map<string, RevokedUser>();
  const controller = new AbortController();
  const types: NonNullable<EventListParams['types']> = [
    'session.revoked',
    'user.deactivated',
    'user.deleted',
    'membership.updated',
    'role.updated',
  ];
  const members = new Map<string, MemberRole>();
  const roles = new Map<string, RolePermissions>();
  const memberKey = (organizationId: string, userId: string) => `${organizationId} ${userId}`;
  let following: Promise<void> | undefined;
  let sweptAt = 0;

  function sweep(at: number, force = false): void {
    if (!force && at - sweptAt < 10_000) return;
    sweptAt = at;
    for (const [id, entry] of sessions) if (entry.until <= at) sessions.delete(id);
    for (const [id, entry] of users) if (entry.until <= at) users.delete(id);
    for (const [id, entry] of members) if (entry.until <= at) members.delete(id);
    for (const [id, entry] of roles) if (entry.until <= at) roles.delete(id);
  }

  function apply(event: { type: string; created_at: string; data: Record<string, unknown> }): void {
    const at = now();
    const createdAt = Date.parse(event.created_at);
    if (event.type === 'session.revoked') {
      const id = event.data.id;
      if (typeof id !== 'string') return;
      const tokensUntil =
        typeof event.data.token_expires_at === 'string'
          ? Date.parse(event.data.token_expires_at)
          : Number.NaN;
      // A minute of margin covers clock skew between Roster and this process.
      const until = (Number.isFinite(tokensUntil) ? tokensUntil : createdAt + lookbackMs) + 60_000;
      if (until > at) sessions.set(id, { until });
    } else if (event.type === 'membership.updated') {
      // Tokens issued before the change (or from data read just before it) expire within a token
      // lifetime of it: remembered that long, like a revoked user.
      const user = event.data.user as { id?: unknown } | undefined;
      const { organization_id: organizationId, role } = event.data;
      if (typeof user?.id !== 'string' || typeof organizationId !== 'string' || typeof role !== 'string')
        return;
      const until = createdAt + lookbackMs;
      if (until > at) members.set(memberKey(organizationId, user.id), { role, until });
    } else if (event.type === 'role.updated') {
      const { key, permissions } = event.data;
      if (typeof key !== 'string' || !Array.isArray(permissions)) return;
      const until = createdAt + lookbackMs;
      if (until > at) roles.set(key, { permissions: new Set(permissions.map(String)), until });
    } else {
      const id = event.data.id;
      if (typeof id !== 'string' || !Number.isFinite(createdAt)) return;
      const until = createdAt + lookbackMs;
      // Every session of the user is revoked with its own event too; this also covers tokens the
      // list never saw a session for. Tokens issued from the second of the change on are let
      // through (a reactivated user's new session), which their session events then decide.
      if (until > at) users.set(id, { before: Math.floor(createdAt / 1000), until });
    }
    sweep(at);
  }

  async function follow(after: string): Promise<void> {
    for (;;) {
      try {
        for await (const event of options.events.iterate({
          after,
          types,
          limit: 1000,
          waitSeconds: options.waitSeconds ?? 20,
          signal: controller.signal,
        })) {
          apply(event as never);
          after = event.cursor;
        }
        return; // aborted
      } catch (error) {
        if (controller.signal.aborted) return;
        // A cursor past retention or a rejected key: report, wait, and start over from now.
        options.onError?.(error);
        await new Promise((resolve) => setTimeout(resolve, 5_000));
        after = (
          await options.events
            .list({ since: new Date(now()).toISOString(), limit: 1 })
            .catch(() => ({ next_cursor: after }))
        ).next_cursor;
      }
    }
  }

  const list = {
    /**
     * Reads the revocations of the last `lookbackSeconds`, then keeps following the feed in the
     * background. Resolves once caught up; rejects when the first read fails (e.g. a wrong key).
     */
    async start(): Promise<void> {
      if (following) return;
      let cursor: string | undefined;
      let page = await options.events.list({
        since: new Date(now() - lookbackMs).toISOString(),
        types,
        limit: 1000,
      });
      for (;;) {
        for (const event of page.data) apply(event as never);
        cursor = page.next_cursor;
        if (page.data.length < 1000) break;
        page = await options.events.list({ after: cursor, types, limit: 1000 });
      }
      following = follow(cursor);
    },
    isRevoked(claims: Pick<SessionClaims, 'sid' | 'sub' | 'iat'>): boolean {
      const at = now();
      const session = sessions.get(claims.sid);
      if (session && session.until > at) return true;
      const user = users.get(claims.sub);
      return user !== undefined && user.until > at && claims.iat < user.before;
    },
    isStale(claims: Pick<SessionClaims, 'sub' | 'org_id' | 'org_role' | 'org_permissions'>): boolean {
      if (members.size === 0 && roles.size === 0) return false;
      const at = now();
      const member = members.get(memberKey(claims.org_id, claims.sub));
      if (member && member.until > at && member.role !== claims.org_role) return true;
      const role = roles.get(claims.org_role);
      if (!role || role.until <= at) return false;
      return (
        role.permissions.size !== new Set(claims.org_permissions).size ||
        !claims.org_permissions.every((p) => role.permissions.has(p))
      );
    },
    /** Entries held (sessions, users, members, roles); drops to zero as changes age out. */
    get size(): number {
      sweep(now(), true);
      return sessions.size + users.size + members.size + roles.size;
    },
    /** Stops following the feed. */
    async stop(): Promise<void> {
      controller.abort();
      await following;
    },
  } satisfies RevocationCheck & Record<string, unknown>;
  return list;
}

export type RevocationList = ReturnType<typeof createRevocationList>;
