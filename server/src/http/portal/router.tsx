import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { ApiError } from '../../errors.js';
import { csrfTokenMatches, findPortalSession, type LinkRefusal, openPortalLink } from '../../portal/links.js';
import { toApiError } from '../v1/errors.js';
import { connectionRoutes } from './connection-routes.js';
import { guardRoutes } from './guard-routes.js';
import { cookieValue, loadAssets, notHere, type PortalDeps, page, securityHeaders } from './http.js';
import { MessagePage } from './layout.js';
import { rolesRoutes } from './roles-routes.js';
import { setupRoutes } from './setup-routes.js';

export type { PortalDeps } from './http.js';

const REFUSED_TEXT: Record<LinkRefusal, string> = {
  used: 'This link has already been used. Each link opens the portal once.',
  expired: 'This link has expired. Links work for 5 minutes after they are made.',
  unknown: 'This link is not valid. It may have been copied incompletely.',
};

/** The Admin Portal under /portal: server-rendered pages for one organization's IT admin. */
export function portalRouter(deps: PortalDeps): Router {
  const { ctx } = deps;
  const secure = ctx.settings.publicUrl.startsWith('https:');
  // Over https the cookie is locked to this host and path (__Host-); over plain http (a local
  // development setup) browsers refuse both the prefix and the Secure flag.
  const cookieName = secure ? '__Host-roster_portal' : 'roster_portal';
  const assets = loadAssets();
  const router = express.Router();
  router.use(securityHeaders);

  router.get('/assets/:name', (req, res) => {
    const asset = assets[String(req.params.name)];
    if (!asset) throw notHere();
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.type(asset.type).send(asset.body);
  });

  router.get('/start', async (req, res) => {
    const token = typeof req.query.token === 'string' ? req.query.token : '';
    const opened = token ? await openPortalLink(ctx, token) : { refused: 'unknown' as const };
    if ('refused' in opened) {
      page(
        res,
        opened.refused === 'unknown' ? 404 : 410,
        <MessagePage title="This link cannot be used">
          <p>{REFUSED_TEXT[opened.refused]}</p>
          <p>
            <b>Ask the app for a new link</b>: go back to the app's settings and open the identity provider
            settings again.
          </p>
        </MessagePage>,
      );
      return;
    }
    const maxAge = Math.floor(ctx.settings.portalSessionTtlMs / 1000);
    res.setHeader(
      'Set-Cookie',
      `${cookieName}=${opened.secret}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`,
    );
    // Leave the URL with the token behind (history, screenshots).
    res.redirect(303, '/portal');
  });

  // Everything below needs a portal session.
  router.use(async (req, res, next) => {
    const secret = cookieValue(req.headers.cookie, cookieName);
    const session = secret ? await findPortalSession(ctx, secret) : undefined;
    if (!session) {
      page(
        res,
        401,
        <MessagePage title="Your session has ended">
          <p>For your security, portal sessions end after a while. Ask the app for a new link to continue.</p>
        </MessagePage>,
      );
      return;
    }
    res.locals.portalSession = session;
    next();
  });

  router.use(express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 1000 }));
  // Every form carries the session's CSRF token; a post without it changes nothing.
  router.use((req, res, next) => {
    if (req.method !== 'POST') return next();
    const session = res.locals.portalSession!;
    if (!csrfTokenMatches(session, (req.body as Record<string, unknown> | undefined)?._csrf)) {
      page(
        res,
        403,
        <MessagePage title="This form has expired" session={session}>
          <p>Nothing was changed. Go back, reload the page and try again.</p>
        </MessagePage>,
      );
      return;
    }
    next();
  });

  setupRoutes(router, deps);
  connectionRoutes(router, deps);
  rolesRoutes(router, deps);
  guardRoutes(router, deps);

  router.use((_req: Request) => {
    throw new ApiError(404, 'not_found', 'There is no such page here.');
  });
  // Failures as pages, never JSON; a 5xx names the request id for support.
  router.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const apiError = toApiError(error);
    if (apiError.status >= 500) req.log.error({ err: error }, 'unhandled error');
    if (res.headersSent) {
      res.end();
      return;
    }
    const session = res.locals.portalSession;
    const title =
      apiError.status === 404
        ? 'Not found'
        : apiError.status >= 500
          ? 'Something went wrong'
          : 'That did not work';
    page(
      res,
      apiError.status,
      <MessagePage title={title} session={session}>
        <p>
          {apiError.status >= 500 ? 'Nothing you did caused this. Try again in a moment.' : apiError.message}
        </p>
        <p class="muted">
          Request id <code>{req.id}</code>
        </p>
        {session ? (
          <p>
            <a href="/portal">Back to the overview</a>
          </p>
        ) : null}
      </MessagePage>,
    );
  });
  return router;
}
