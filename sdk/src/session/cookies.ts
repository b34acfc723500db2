/**
 * Cookie names and attributes of the session cookies the middleware reads and writes.
 *
 * The default names carry the `__Host-` prefix: browsers then accept the cookie only if it is
 * Secure, has `Path=/` and no `Domain`, so a sibling subdomain (or a plain-http page on the same
 * host) cannot plant or overwrite a session cookie. Plain-http development (`secure: false`), a
 * `domain` or another `path` cannot have that prefix: the names are then `roster_session` and
 * `roster_refresh`.
 */
export interface SessionCookieOptions {
  /** Cookie holding the session JWT. Default `__Host-roster_session` (see above). */
  sessionName?: string;
  /** Cookie holding the refresh token (HttpOnly). Default `__Host-roster_refresh` (see above). */
  refreshName?: string;
  /** Default `/`. */
  path?: string;
  domain?: string;
  /**
   * Default true. Browsers accept Secure cookies on http://localhost too; `false` is for plain-http
   * development on another host name, and drops the `__Host-` prefix of the default names.
   */
  secure?: boolean;
  /** Default `lax`. With `none`, requests with unsafe methods must come from `allowedOrigins`. */
  sameSite?: 'lax' | 'strict' | 'none';
  /**
   * With `sameSite: 'none'`, the origins (`https://app.example.com`) whose POST, PUT, PATCH and
   * DELETE requests may be authenticated by the session cookie: other origins get
   * `origin_not_allowed` (cross-site request forgery). Default: the request's own origin (its
   * `Origin` header names the host of its `Host` header).
   */
  allowedOrigins?: string[];
}

export type ResolvedCookieOptions = Required<Omit<SessionCookieOptions, 'domain' | 'allowedOrigins'>> & {
  domain?: string;
  allowedOrigins?: string[];
};

export function resolveCookieOptions(options: SessionCookieOptions | undefined): ResolvedCookieOptions {
  const path = options?.path ?? '/';
  const secure = options?.secure ?? true;
  // The `__Host-` prefix is only valid (browsers drop the cookie otherwise) with these attributes.
  const prefix = secure && path === '/' && !options?.domain ? '__Host-' : '';
  return {
    sessionName: options?.sessionName ?? `${prefix}roster_session`,
    refreshName: options?.refreshName ?? `${prefix}roster_refresh`,
    path,
    secure,
    sameSite: options?.sameSite ?? 'lax',
    ...(options?.domain ? { domain: options.domain } : {}),
    ...(options?.allowedOrigins ? { allowedOrigins: options.allowedOrigins.map(normalizeOrigin) } : {}),
  };
}

/** `https://App.example.com/` -> `https://app.example.com` (the form of an `Origin` header). */
function normalizeOrigin(origin: string): string {
  try {
    return new URL(origin).origin;
  } catch {
    throw new TypeError(`cookies.allowedOrigins: ${JSON.stringify(origin)} is not an origin URL`);
  }
}

const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Whether a request authenticated by its session cookie may proceed. Only with `SameSite=None`:
 * `Lax` and `Strict` cookies are not sent on cross-site POSTs anyway. Safe methods pass (they must
 * not change anything); unsafe ones need an `Origin` that is allowed.
 */
export function originAllowed(
  options: ResolvedCookieOptions,
  method: string | undefined,
  origin: string | undefined,
  host: string | undefined,
): boolean {
  if (options.sameSite !== 'none' || !UNSAFE_METHODS.has((method ?? 'GET').toUpperCase())) return true;
  if (!origin || origin === 'null') return false;
  if (options.allowedOrigins) return options.allowedOrigins.includes(origin);
  try {
    return host !== undefined && new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
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
