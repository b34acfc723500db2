import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { VNode } from 'preact';
import { render } from 'preact-render-to-string';
import type { Context } from '../../context.js';
import { createConnection } from '../../directory/connections.js';
import { previewRoleMappings } from '../../directory/role-mapping-preview.js';
import { getRoleMappings, setRoleMappings } from '../../directory/role-mappings.js';
import { rotateScimToken } from '../../directory/scim-tokens.js';
import { scimBaseUrl } from '../../directory/serialize.js';
import type { SyncLogWriter } from '../../directory/sync-log.js';
import { ApiError } from '../../errors.js';
import { isId } from '../../ids.js';
import {
  csrfTokenMatches,
  findPortalSession,
  type LinkRefusal,
  openPortalLink,
  type PortalSession,
  portalContext,
} from '../../portal/links.js';
import {
  type ConnectionSummary,
  listConnectionGroups,
  readSyncLog,
  recentArrivals,
  summarizeConnections,
} from '../../portal/queries.js';
import { toApiError } from '../v1/errors.js';
import {
  ChooseProviderPage,
  GuidePage,
  type LiveData,
  LivePage,
  MessagePage,
  OverviewPage,
  type RoleRowView,
  RolesPage,
  SyncLogPage,
  TokenPage,
  TokenSettingsPage,
} from './pages.js';
import { findProvider } from './providers.js';

export interface PortalDeps {
  ctx: Context;
  syncLog: SyncLogWriter;
}

/**
 * Every portal response: no framing, no inline script or style, nothing from another origin, no
 * referrer (a link token must not leak), never cached.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

function securityHeaders(_req: Request, res: Response, next: NextFunction) {
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Cache-Control', 'no-store');
  next();
}

/** The stylesheet and script ship in server/public/portal (next to src/ and dist/). */
function loadAssets(): Record<string, { type: string; body: string }> {
  const candidates = ['../public/portal/', '../../../public/portal/'].map((rel) =>
    fileURLToPath(new URL(rel, import.meta.url)),
  );
  const dir = candidates.find((candidate) => existsSync(`${candidate}portal.css`));
  if (!dir) throw new Error(`portal assets not found in ${candidates.join(' or ')}`);
  return {
    'portal.css': { type: 'text/css; charset=utf-8', body: readFileSync(`${dir}portal.css`, 'utf8') },
    'portal.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(`${dir}portal.js`, 'utf8') },
  };
}

function page(res: Response, status: number, vnode: VNode): void {
  res
    .status(status)
    .type('html')
    .send(`<!doctype html>${render(vnode)}`);
}

const REFUSED_TEXT: Record<LinkRefusal, string> = {
  used: 'This link has already been used. Each link opens the portal once.',
  expired: 'This link has expired. Links work for 5 minutes after they are made.',
  unknown: 'This link is not valid. It may have been copied incompletely.',
};

declare global {
  namespace Express {
    interface Locals {
      portalSession?: PortalSession;
    }
  }
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Thrown for a connection id the session may not see: another organization's reads as absent. */
const notHere = () => new ApiError(404, 'not_found', 'There is no such connection here.');

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

  const sessionOf = (res: Response) => res.locals.portalSession!;

  async function ownSummary(req: Request, res: Response): Promise<ConnectionSummary> {
    const id = String(req.params.connection_id);
    if (!isId('connection', id)) throw notHere();
    const [summary] = await summarizeConnections(ctx, sessionOf(res).organizationId, id);
    if (!summary) throw notHere();
    return summary;
  }

  router.get('/', async (_req, res) => {
    await deps.syncLog.flush();
    const session = sessionOf(res);
    const summaries = await summarizeConnections(ctx, session.organizationId);
    page(res, 200, <OverviewPage session={session} summaries={summaries} />);
  });

  router.get('/connect', (_req, res) => {
    page(res, 200, <ChooseProviderPage session={sessionOf(res)} />);
  });

  router.get('/connect/:provider', (req, res) => {
    const provider = findProvider(String(req.params.provider));
    if (!provider) throw new ApiError(404, 'not_found', 'There is no such identity provider here.');
    const pattern = provider.baseUrl(scimBaseUrl(ctx.settings.publicUrl, 'conn_…'));
    page(res, 200, <GuidePage session={sessionOf(res)} provider={provider} baseUrlPattern={pattern} />);
  });

  router.post('/connect/:provider', async (req, res) => {
    const session = sessionOf(res);
    const provider = findProvider(String(req.params.provider));
    if (!provider?.canConnect)
      throw new ApiError(404, 'not_found', 'There is no such identity provider here.');
    const name = typeof req.body.name === 'string' ? req.body.name.trim() : '';
    if (name.length === 0 || name.length > 200) {
      const pattern = provider.baseUrl(scimBaseUrl(ctx.settings.publicUrl, 'conn_…'));
      page(
        res,
        400,
        <GuidePage
          session={session}
          provider={provider}
          baseUrlPattern={pattern}
          error="Give the connection a name (up to 200 characters)."
        />,
      );
      return;
    }
    const { connection, token } = await createConnection(
      portalContext(ctx, session),
      session.organizationId,
      {
        name,
        provider: provider.id,
      },
    );
    page(
      res,
      201,
      <TokenPage
        session={session}
        connectionId={connection.id}
        provider={provider}
        baseUrl={provider.baseUrl(scimBaseUrl(ctx.settings.publicUrl, connection.id))}
        token={token}
        heading={`${connection.name}: paste these into ${provider.name}`}
      />,
    );
  });

  async function liveData(summary: ConnectionSummary): Promise<LiveData> {
    const id = summary.connection.id;
    const [first] = await readSyncLog(ctx, id, { errorsOnly: false, limit: 1, oldestFirst: true });
    const failures = await readSyncLog(ctx, id, { errorsOnly: true, limit: 5 });
    const { users, groups } = await recentArrivals(ctx, id, 5);
    return { summary, firstRequest: first, failures, users, groups };
  }

  router.get('/connections/:connection_id', async (req, res) => {
    await deps.syncLog.flush();
    const data = await liveData(await ownSummary(req, res));
    page(res, 200, <LivePage session={sessionOf(res)} data={data} />);
  });

  async function tokenSettings(req: Request, res: Response) {
    const summary = await ownSummary(req, res);
    const tokens = await ctx.db
      .selectFrom('scim_tokens')
      .select(['hint', 'created_at', 'expires_at', 'last_used_at'])
      .where('connection_id', '=', summary.connection.id)
      .orderBy('id', 'desc')
      .limit(20)
      .execute();
    page(
      res,
      200,
      <TokenSettingsPage session={sessionOf(res)} summary={summary} tokens={tokens} now={ctx.now()} />,
    );
  }
  router.get('/connections/:connection_id/token', tokenSettings);

  router.post('/connections/:connection_id/token', async (req, res) => {
    const session = sessionOf(res);
    const summary = await ownSummary(req, res);
    const graceSeconds = Number(req.body.grace_seconds);
    if (![0, 3600, 86_400, 604_800].includes(graceSeconds)) {
      throw new ApiError(400, 'validation_failed', 'Choose how long the current token keeps working.');
    }
    const rotation = await rotateScimToken(
      portalContext(ctx, session),
      summary.connection.id,
      graceSeconds * 1000,
    );
    const provider = findProvider(summary.connection.provider) ?? findProvider('generic')!;
    page(
      res,
      201,
      <TokenPage
        session={session}
        connectionId={summary.connection.id}
        provider={provider}
        baseUrl={provider.baseUrl(scimBaseUrl(ctx.settings.publicUrl, summary.connection.id))}
        token={rotation.token}
        heading="Your new token"
        previousExpireAt={rotation.previousExpireAt}
        now={ctx.now()}
      />,
    );
  });

  /** The roles page's table: mapped groups in precedence order, then the others by name. */
  async function roleRows(summary: ConnectionSummary) {
    const id = summary.connection.id;
    const groups = await listConnectionGroups(ctx, id);
    const { mappings } = await getRoleMappings(ctx, id);
    const used = new Set<number>();
    const rows: (RoleRowView & { precedence: number })[] = groups.map((group) => {
      const index = mappings.findIndex(
        (m) => m.group.toLowerCase() === group.display_name.toLowerCase() || m.group === group.external_id,
      );
      if (index !== -1) used.add(index);
      const mapping = mappings[index];
      return {
        groupId: group.id,
        groupName: group.display_name,
        memberCount: group.member_count,
        ref: mapping?.group ?? group.display_name,
        role: mapping?.role ?? '',
        precedence: mapping?.precedence ?? Number.MAX_SAFE_INTEGER,
      };
    });
    rows.sort((a, b) => a.precedence - b.precedence);
    const otherMappings = mappings
      .filter((_m, i) => !used.has(i))
      .map((m) => ({ group: m.group, role: m.role }));
    return { rows, otherMappings };
  }

  async function renderRoles(
    res: Response,
    summary: ConnectionSummary,
    rows: RoleRowView[],
    otherMappings: { group: string; role: string }[],
    extra: {
      status?: number;
      preview?: Awaited<ReturnType<typeof previewRoleMappings>>;
      saved?: boolean;
      error?: string;
    },
  ) {
    const roles = await ctx.db.selectFrom('roles').select(['key', 'name']).orderBy('key').execute();
    const organization = await ctx.db
      .selectFrom('organizations')
      .select('default_role')
      .where('id', '=', summary.connection.organization_id)
      .executeTakeFirstOrThrow();
    page(
      res,
      extra.status ?? 200,
      <RolesPage
        session={sessionOf(res)}
        summary={summary}
        rows={rows}
        otherMappings={otherMappings}
        roles={roles}
        defaultRole={organization.default_role}
        preview={extra.preview}
        saved={extra.saved ?? false}
        error={extra.error}
      />,
    );
  }

  router.get('/connections/:connection_id/roles', async (req, res) => {
    const summary = await ownSummary(req, res);
    const { rows, otherMappings } = await roleRows(summary);
    await renderRoles(res, summary, rows, otherMappings, { saved: req.query.saved === '1' });
  });

  router.post('/connections/:connection_id/roles', async (req, res) => {
    const session = sessionOf(res);
    const summary = await ownSummary(req, res);
    const { rows, otherMappings } = await roleRows(summary);
    // The submitted choice for each group on the page; groups not on the form keep their role.
    const body = req.body as Record<string, unknown>;
    const chosen = rows.map((row) => {
      const value = body[`role:${row.groupId}`];
      return { ...row, role: typeof value === 'string' ? value : row.role };
    });
    const mappings = [
      ...chosen.filter((row) => row.role !== '').map((row) => ({ group: row.ref, role: row.role })),
      ...otherMappings,
    ];
    const known = new Set((await ctx.db.selectFrom('roles').select('key').execute()).map((r) => r.key));
    if (mappings.some((m) => !known.has(m.role))) {
      await renderRoles(res, summary, chosen, otherMappings, {
        status: 400,
        error: 'Choose one of the listed roles.',
      });
      return;
    }
    const change = { at: ctx.now().toISOString(), request_id: req.id, via: 'portal' } as const;
    if (body.action === 'save') {
      await setRoleMappings(portalContext(ctx, session), summary.connection.id, mappings, change);
      res.redirect(303, `/portal/connections/${summary.connection.id}/roles?saved=1`);
      return;
    }
    const preview = await previewRoleMappings(ctx, summary.connection.id, mappings, change);
    await renderRoles(res, summary, chosen, otherMappings, { preview });
  });

  router.get('/connections/:connection_id/log', async (req, res) => {
    await deps.syncLog.flush();
    const summary = await ownSummary(req, res);
    const errorsOnly = req.query.errors === '1';
    const lines = await readSyncLog(ctx, summary.connection.id, { errorsOnly, limit: 200 });
    page(
      res,
      200,
      <SyncLogPage session={sessionOf(res)} summary={summary} lines={lines} errorsOnly={errorsOnly} />,
    );
  });

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
