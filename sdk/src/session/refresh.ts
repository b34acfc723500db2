import { retryAfterMs } from '../timing.js';
import type { SessionTokensLike } from './cookies.js';
import type { SignedOutReason } from './jwt.js';

export type RefreshOutcome =
  | { ok: true; tokens: SessionTokensLike }
  | {
      ok: false;
      reason: SignedOutReason;
      message: string;
      /** The refresh was refused for good: the cookies go. */
      clear: boolean;
      /** A rate-limited refresh (429): seconds until another may succeed. */
      retryAfter?: number;
    };

/** Refusal codes of POST /v1/sessions/refresh, as signed-out reasons. */
const REFUSALS: Record<string, SignedOutReason> = {
  session_revoked: 'session_revoked',
  session_expired: 'session_expired',
  user_inactive: 'user_inactive',
  not_a_member: 'not_a_member',
  invalid_refresh_token: 'session_revoked',
};

// Outcomes are remembered this long, by refresh token: parallel requests of one browser share one
// refresh instead of spending the token twice. Bounded: past MAX_REFRESHES entries the oldest go
// (a flood of made-up refresh cookies must not grow memory without bound).
const REMEMBER_MS = 15_000;
const MAX_REFRESHES = 10_000;

/**
 * The client of `POST /v1/sessions/refresh` the middleware uses: one call per refresh token at a
 * time (and its outcome shared for a while), refusals told apart from Roster being unreachable
 * or rate limiting (`429` with `Retry-After`, per session), which must not sign anyone out.
 */
export function createRefreshClient(options: { baseUrl: string; fetch: typeof fetch; now: () => number }) {
  const refreshes = new Map<string, { outcome: Promise<RefreshOutcome>; until: number }>();

  async function call(refreshToken: string): Promise<RefreshOutcome> {
    let response: Response;
    try {
      response = await options.fetch(`${options.baseUrl}/v1/sessions/refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ refresh_token: refreshToken }),
      });
    } catch (error) {
      return {
        ok: false,
        reason: 'roster_unavailable',
        message: `refresh failed: ${(error as Error).message}`,
        clear: false,
      };
    }
    const body = (await response.json().catch(() => undefined)) as
      | (SessionTokensLike & { error?: { code?: string; message?: string } })
      | undefined;
    if (response.ok && body?.token && body.refresh_token) return { ok: true, tokens: body };
    const code = body?.error?.code ?? '';
    if (response.status === 401 && REFUSALS[code]) {
      return {
        ok: false,
        reason: REFUSALS[code],
        message: body?.error?.message ?? 'Refresh refused.',
        clear: true,
      };
    }
    if (response.status === 429) {
      // The refresh token was not spent: it works again after Retry-After (1 s when unreadable).
      const waitMs = retryAfterMs(response.headers.get('retry-after'), options.now()) ?? 1000;
      return {
        ok: false,
        reason: 'roster_unavailable',
        message: 'Roster rate-limited the session refresh: retry shortly.',
        clear: false,
        retryAfter: Math.max(1, Math.ceil(waitMs / 1000)),
      };
    }
    return {
      ok: false,
      reason: 'roster_unavailable',
      message: `refresh answered HTTP ${response.status}`,
      clear: false,
    };
  }

  /** Refreshes a session, sharing a call in flight (or just done) for the same refresh token. */
  function refresh(refreshToken: string): Promise<RefreshOutcome> {
    const at = options.now();
    const known = refreshes.get(refreshToken);
    if (known && known.until > at) return known.outcome;
    if (known) refreshes.delete(refreshToken);
    // Map order is insertion order, and every entry is remembered at most equally long: the oldest
    // (and the expired ones) come first, so this stops at the first entry to keep.
    for (const [k, v] of refreshes) {
      if (v.until > at && refreshes.size < MAX_REFRESHES) break;
      refreshes.delete(k);
    }
    const outcome = call(refreshToken);
    const entry = { outcome, until: at + REMEMBER_MS };
    refreshes.set(refreshToken, entry);
    // A rate-limited refresh is remembered only until its Retry-After: the token then works again
    // (remembering it 15 s would keep answering "unavailable" long after Roster would refresh).
    void outcome.then((result) => {
      if (!result.ok && result.retryAfter !== undefined)
        entry.until = Math.min(entry.until, at + result.retryAfter * 1000);
    });
    return outcome;
  }

  return { refresh };
}
