import type { Response, Router } from 'express';
import { updateConnection } from '../../directory/connections.js';
import {
  guardLimit,
  parseWindow,
  recentDeprovisions,
  releaseGuard,
  toDeprovisionGuard,
} from '../../directory/deprovision-guard.js';
import { ApiError } from '../../errors.js';
import { portalContext } from '../../portal/links.js';
import type { ConnectionSummary } from '../../portal/queries.js';
import {
  formValues,
  type GuardFormValues,
  GuardPage,
  parseGuardForm,
  suggestedValues,
} from './guard-page.js';
import { ownSummary, type PortalDeps, page, sessionOf } from './http.js';

/** The deactivation guard of a connection: its settings, its held state and the release. */
export function guardRoutes(router: Router, deps: PortalDeps): void {
  const { ctx } = deps;

  async function renderGuard(
    res: Response,
    summary: ConnectionSummary,
    extra: { status?: number; values?: GuardFormValues; error?: string; done?: 'saved' | 'released' },
  ) {
    const id = summary.connection.id;
    const row = await ctx.db
      .selectFrom('deprovision_guards')
      .selectAll()
      .where('connection_id', '=', id)
      .executeTakeFirst();
    const guard = toDeprovisionGuard(row);
    const now = ctx.now();
    const counted = row?.enabled ? await recentDeprovisions(ctx.db, id, row, now) : [];
    // The users the percentage applies to: those of the connection, with the ones deleted within
    // the window (as the guard counts them).
    const { users } = await ctx.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<string>().as('users'))
      .where('connection_id', '=', id)
      .where('deleted_at', 'is', null)
      .executeTakeFirstOrThrow();
    const population = Number(users) + counted.filter((d) => d.kind === 'deleted').length;
    const suggested = suggestedValues(population);
    page(
      res,
      extra.status ?? 200,
      <GuardPage
        session={sessionOf(res)}
        summary={summary}
        guard={guard}
        // Off and never set: the form proposes the suggested limits, switched on.
        values={extra.values ?? (row ? formValues(guard) : suggested.values)}
        suggestion={suggested.suggestion}
        counted={counted.length}
        held={row?.held_at ? { applied: counted, limit: guardLimit(row, population) } : undefined}
        now={now}
        status={extra.done}
        error={extra.error}
      />,
    );
  }

  router.get('/connections/:connection_id/guard', async (req, res) => {
    const summary = await ownSummary(ctx, req, res);
    const done = req.query.saved === '1' ? 'saved' : req.query.released === '1' ? 'released' : undefined;
    await renderGuard(res, summary, done ? { done } : {});
  });

  router.post('/connections/:connection_id/guard', async (req, res) => {
    const summary = await ownSummary(ctx, req, res);
    const form = parseGuardForm(req.body as Record<string, unknown>);
    if ('error' in form) {
      await renderGuard(res, summary, { status: 400, values: form.values, error: form.error });
      return;
    }
    await updateConnection(portalContext(ctx, sessionOf(res)), summary.connection.id, {
      deprovision_guard: form.input,
    });
    res.redirect(303, `/portal/connections/${summary.connection.id}/guard?saved=1`);
  });

  router.post('/connections/:connection_id/guard/release', async (req, res) => {
    const summary = await ownSummary(ctx, req, res);
    const window = typeof req.body.window === 'string' ? req.body.window : '';
    if (!['', '1h', '1d'].includes(window))
      throw new ApiError(400, 'validation_failed', 'Choose how to release.');
    await releaseGuard(
      portalContext(ctx, sessionOf(res)),
      summary.connection.id,
      window === '' ? undefined : parseWindow(window, 'window'),
    );
    res.redirect(303, `/portal/connections/${summary.connection.id}/guard?released=1`);
  });
}
