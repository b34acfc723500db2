import type { Router } from 'express';
import { createConnection } from '../../directory/connections.js';
import { scimBaseUrl } from '../../directory/serialize.js';
import { ApiError } from '../../errors.js';
import { portalContext } from '../../portal/links.js';
import { summarizeConnections } from '../../portal/queries.js';
import { ChooseProviderPage, GuidePage, TokenPage } from './connect-pages.js';
import { type PortalDeps, page, sessionOf } from './http.js';
import { OverviewPage } from './overview-page.js';
import { findProvider } from './providers.js';

/** The overview and setting a connection up. */
export function setupRoutes(router: Router, deps: PortalDeps): void {
  const { ctx } = deps;
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
}
