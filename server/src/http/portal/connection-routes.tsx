import type { Request, Response, Router } from 'express';
import { rotateScimToken } from '../../directory/scim-tokens.js';
import { scimBaseUrl } from '../../directory/serialize.js';
import { ApiError } from '../../errors.js';
import { portalContext } from '../../portal/links.js';
import { type ConnectionSummary, readSyncLog, recentArrivals } from '../../portal/queries.js';
import { TokenPage } from './connect-pages.js';
import { ownSummary, type PortalDeps, page, sessionOf } from './http.js';
import { type LiveData, LivePage } from './live-page.js';
import { findProvider } from './providers.js';
import { SyncLogPage } from './sync-log-page.js';
import { TokenSettingsPage } from './token-settings-page.js';

/** A connection's live check, token and sync log. */
export function connectionRoutes(router: Router, deps: PortalDeps): void {
  const { ctx } = deps;
  async function liveData(summary: ConnectionSummary): Promise<LiveData> {
    const id = summary.connection.id;
    const [first] = await readSyncLog(ctx, id, { errorsOnly: false, limit: 1, oldestFirst: true });
    const failures = await readSyncLog(ctx, id, { errorsOnly: true, limit: 5 });
    const { users, groups } = await recentArrivals(ctx, id, 5);
    return { summary, firstRequest: first, failures, users, groups };
  }

  router.get('/connections/:connection_id', async (req, res) => {
    await deps.syncLog.flush();
    const data = await liveData(await ownSummary(ctx, req, res));
    page(res, 200, <LivePage session={sessionOf(res)} data={data} />);
  });

  async function tokenSettings(req: Request, res: Response) {
    const summary = await ownSummary(ctx, req, res);
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
    const summary = await ownSummary(ctx, req, res);
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

  router.get('/connections/:connection_id/log', async (req, res) => {
    await deps.syncLog.flush();
    const summary = await ownSummary(ctx, req, res);
    const errorsOnly = req.query.errors === '1';
    const lines = await readSyncLog(ctx, summary.connection.id, { errorsOnly, limit: 200 });
    page(
      res,
      200,
      <SyncLogPage session={sessionOf(res)} summary={summary} lines={lines} errorsOnly={errorsOnly} />,
    );
  });
}
