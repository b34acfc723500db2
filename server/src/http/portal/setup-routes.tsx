import type { Response, Router } from 'express';
import { createConnection, updateConnection } from '../../directory/connections.js';
import { scimBaseUrl } from '../../directory/serialize.js';
import { ApiError } from '../../errors.js';
import { portalContext } from '../../portal/links.js';
import { summarizeConnections } from '../../portal/queries.js';
import { ChooseProviderPage, GuidePage, TokenPage } from './connect-pages.js';
import { type GuardFormValues, parseGuardForm, suggestedValues } from './guard-page.js';
import { type PortalDeps, page, sessionOf } from './http.js';
import { OverviewPage } from './overview-page.js';
import { findProvider, type ProviderGuide } from './providers.js';

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

  /**
   * The provider's steps and the form that creates the connection, with the deactivation guard
   * offered (on) at limits suggested from the organization's size: the people it has already, the
   * directory the IdP is about to sync being unknown until then.
   */
  async function renderGuide(
    res: Response,
    provider: ProviderGuide,
    extra: { status?: number; error?: string; name?: string; guard?: GuardFormValues } = {},
  ) {
    const session = sessionOf(res);
    const { members } = await ctx.db
      .selectFrom('memberships')
      .select((eb) => eb.fn.countAll<string>().as('members'))
      .where('organization_id', '=', session.organizationId)
      .where('status', '=', 'active')
      .executeTakeFirstOrThrow();
    const suggested = suggestedValues(Number(members));
    page(
      res,
      extra.status ?? 200,
      <GuidePage
        session={session}
        provider={provider}
        baseUrlPattern={provider.baseUrl(scimBaseUrl(ctx.settings.publicUrl, 'conn_…'))}
        guard={extra.guard ?? suggested.values}
        guardSuggestion={suggested.suggestion}
        name={extra.name}
        error={extra.error}
      />,
    );
  }

  router.get('/connect/:provider', async (req, res) => {
    const provider = findProvider(String(req.params.provider));
    if (!provider) throw new ApiError(404, 'not_found', 'There is no such identity provider here.');
    await renderGuide(res, provider);
  });

  router.post('/connect/:provider', async (req, res) => {
    const session = sessionOf(res);
    const provider = findProvider(String(req.params.provider));
    if (!provider?.canConnect)
      throw new ApiError(404, 'not_found', 'There is no such identity provider here.');
    const name = typeof req.body.name === 'string' ? req.body.name.trim() : '';
    const guard = parseGuardForm(req.body as Record<string, unknown>);
    if (name.length === 0 || name.length > 200 || 'error' in guard) {
      await renderGuide(res, provider, {
        status: 400,
        name,
        guard: guard.values,
        error: 'error' in guard ? guard.error : 'Give the connection a name (up to 200 characters).',
      });
      return;
    }
    const actor = portalContext(ctx, session);
    const { connection, token } = await createConnection(actor, session.organizationId, {
      name,
      provider: provider.id,
    });
    if (guard.input.enabled) {
      await updateConnection(actor, connection.id, { deprovision_guard: guard.input });
    }
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
