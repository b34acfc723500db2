import type { Router } from 'express';
import type { Schemas } from '../../../contract.js';
import { ApiError, parseInput } from '../../../errors.js';
import { decodeEventCursor, positionBefore, readFeedWaiting } from '../../../events/feed.js';
import { organizationFilter } from '../access.js';
import type { V1Deps } from '../deps.js';
import { EventsQuery } from '../schemas.js';
import { idFilter, send } from '../util.js';

/** The events feed: routes of /v1, registered by ../router.ts. */
export function eventRoutes(router: Router, deps: V1Deps): void {
  const { ctx } = deps;
  router.get('/events', async (req, res) => {
    const q = parseInput(EventsQuery, req.query, 'query');
    if (q.after !== undefined && q.since !== undefined) {
      throw new ApiError(400, 'validation_failed', 'Give either after or since, not both.', {
        details: [{ path: 'since', code: 'conflict', message: 'not with after' }],
      });
    }
    const closed = new AbortController();
    res.once('close', () => closed.abort());
    const page = await readFeedWaiting(
      ctx,
      {
        after:
          q.after !== undefined
            ? decodeEventCursor(q.after)
            : q.since !== undefined
              ? await positionBefore(ctx, new Date(q.since))
              : undefined,
        limit: q.limit,
        types: q.types,
        organizationId: organizationFilter(
          req,
          idFilter(q.organization_id, 'organization', 'organization_id'),
        ),
      },
      q.wait * 1000,
      deps.waitForFeed,
      closed.signal,
    );
    send<Schemas['EventList']>(req, res, 200, page);
  });
}
