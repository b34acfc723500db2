import type { Roster } from '@roster/sdk';
import {
  clearSessionCookies,
  createNodeSessionVerifier,
  type RevocationCheck,
  requirePermission,
  requireSession,
  setSessionCookies,
  withSession,
} from '@roster/sdk/express';
import express, { type Express } from 'express';

export interface AppOptions {
  /** The management client (server side only: it holds the secret key). */
  roster: Roster;
  /** Where the middleware fetches the JWKS and refreshes sessions. */
  rosterUrl: string;
  /** Immediate revocation (createRevocationList); without it a revoked session ends at its token's expiry. */
  revocations?: RevocationCheck;
  /** Secure cookies (default true; false for plain-http local testing). */
  secureCookies?: boolean;
  /** The middleware's clock, in ms (tests). */
  now?: () => number;
}

/**
 * The smallest app that shows the whole session life cycle:
 * - `POST /login` signs a member in and stores the session in two HttpOnly cookies. (A real app
 *   authenticates the person first: SSO, password, magic link. Here the email is taken on trust.)
 * - `GET /api/me` needs a session; `GET /api/invoices` also the `invoices:read` permission.
 * - `POST /logout` revokes the session and clears the cookies.
 * - `GET /` works signed in or not.
 * Expired session tokens are refreshed by the middleware from the refresh cookie; once Roster
 * refuses (user deactivated in the IdP, session revoked), the cookies are cleared and the API
 * answers 401.
 */
export function createApp(options: AppOptions): Express {
  const cookies = { secure: options.secureCookies ?? true };
  // One verifier (one JWKS cache) shared by every middleware of the app.
  const verifier = createNodeSessionVerifier({
    baseUrl: options.rosterUrl,
    cookies,
    revocations: options.revocations,
    now: options.now,
  });
  const app = express();
  app.use(express.json());

  app.post('/login', async (req, res) => {
    const { email, organization_id: organizationId } = req.body ?? {};
    if (typeof email !== 'string' || typeof organizationId !== 'string') {
      res
        .status(400)
        .json({ error: { code: 'validation_failed', message: 'email and organization_id are required' } });
      return;
    }
    const page = await options.roster.organizations.listMembers({
      organizationId,
      query: email,
      status: 'active',
    });
    const member = page.data.find((m) => m.user.email?.toLowerCase() === email.toLowerCase());
    if (!member) {
      res
        .status(401)
        .json({ error: { code: 'unknown_member', message: 'No active member with this email' } });
      return;
    }
    const tokens = await options.roster.sessions.create({ userId: member.user.id, organizationId });
    setSessionCookies(res, tokens, { cookies });
    res.json({ user_id: tokens.user_id, role: tokens.role });
  });

  app.post('/logout', requireSession({ baseUrl: options.rosterUrl, verifier }), async (req, res) => {
    await options.roster.sessions.revoke({ sessionId: req.auth!.sessionId });
    clearSessionCookies(res, { cookies });
    res.status(204).end();
  });

  app.get('/', withSession({ baseUrl: options.rosterUrl, verifier }), (req, res) => {
    res.json({ signed_in: Boolean(req.auth), user_id: req.auth?.userId ?? null });
  });

  app.use('/api', requireSession({ baseUrl: options.rosterUrl, verifier }));
  app.get('/api/me', (req, res) => {
    const { userId, sessionId, orgId, role, permissions } = req.auth!;
    res.json({ user_id: userId, session_id: sessionId, org_id: orgId, role, permissions });
  });
  app.get('/api/invoices', requirePermission('invoices:read'), (req, res) => {
    res.json({ data: [], org_id: req.auth!.orgId });
  });
  return app;
}
