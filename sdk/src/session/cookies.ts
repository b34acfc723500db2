/** Cookie names and attributes of the session cookies the middleware reads and writes. */
export interface SessionCookieOptions {
  /** Cookie holding the session JWT. Default `roster_session`. */
  sessionName?: string;
  /** Cookie holding the refresh token (HttpOnly). Default `roster_refresh`. */
  refreshName?: string;
  /** Default `/`. */
  path?: string;
  domain?: string;
  /** Default true. Browsers accept Secure cookies on http://localhost too. */
  secure?: boolean;
  /** Default `lax`. */
  sameSite?: 'lax' | 'strict' | 'none';
}

export type ResolvedCookieOptions = Required<Omit<SessionCookieOptions, 'domain'>> & { domain?: string };

export function resolveCookieOptions(options: SessionCookieOptions | undefined): ResolvedCookieOptions {
  return {
    sessionName: options?.sessionName ?? 'roster_session',
    refreshName: options?.refreshName ?? 'roster_refresh',
    path: options?.path ?? '/',
    secure: options?.secure ?? true,
    sameSite: options?.sameSite ?? 'lax',
    ...(options?.domain ? { domain: options.domain } : {}),
  };
}

/** Parses a `Cookie` header; malformed pairs are skipped, the first of repeated names wins. */
export function parseCookies(header: string | null | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  if (!header) return cookies;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at <= 0) continue;
    const name = part.slice(0, at).trim();
    if (cookies.has(name)) continue;
    let value = part.slice(at + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      cookies.set(name, decodeURIComponent(value));
    } catch {
      // not percent-encoded properly: not one of ours
    }
  }
  return cookies;
}

function serialize(
  name: string,
  value: string,
  maxAgeSeconds: number,
  options: ResolvedCookieOptions,
): string {
  const parts = [`${name}=${encodeURIComponent(value)}`, `Path=${options.path}`, 'HttpOnly'];
  if (options.domain) parts.push(`Domain=${options.domain}`);
  if (options.secure) parts.push('Secure');
  parts.push(`SameSite=${options.sameSite[0]!.toUpperCase()}${options.sameSite.slice(1)}`);
  parts.push(`Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`);
  return parts.join('; ');
}

/** Tokens as `POST /v1/sessions` and `/v1/sessions/refresh` return them. */
export interface SessionTokensLike {
  token: string;
  refresh_token: string;
  session_expires_at: string;
}

/**
 * `Set-Cookie` values that store a session: both cookies HttpOnly, living as long as the session
 * (an expired JWT in the cookie is what triggers the refresh).
 */
export function sessionCookies(
  tokens: SessionTokensLike,
  options: ResolvedCookieOptions,
  nowMs: number = Date.now(),
): string[] {
  const maxAge = (Date.parse(tokens.session_expires_at) - nowMs) / 1000;
  return [
    serialize(options.sessionName, tokens.token, maxAge, options),
    serialize(options.refreshName, tokens.refresh_token, maxAge, options),
  ];
}

/** `Set-Cookie` values that delete both session cookies (sign-out, or a refused refresh). */
export function clearedSessionCookies(options: ResolvedCookieOptions): string[] {
  return [serialize(options.sessionName, '', 0, options), serialize(options.refreshName, '', 0, options)];
}
