import type { Context } from '../../context.js';
import { listScimGroups } from '../../directory/scim-groups.js';
import { listScimUsers } from '../../directory/scim-users.js';
import { MAX_RESULTS } from '../../scim/core/discovery.js';
import { ScimError } from '../../scim/protocol/error.js';
import { listResponse } from '../../scim/protocol/list-response.js';
import { searchRequest } from './body.js';
import type { Route } from './call.js';
import { listParams } from './list-params.js';
import { renderGroups, renderUsers, send, wantsGroups } from './response.js';

/** `POST /.search`: one search across Users and Groups (RFC 7644 §3.4.3). */
export function rootSearchRoutes(ctx: Context): Record<string, Route> {
  return {
    'POST /.search': async (call) => {
      const params = listParams(searchRequest(call.body));
      const everything = { ...params.query, startIndex: 1, count: MAX_RESULTS };
      const attempt = async <R>(fn: () => Promise<{ rows: R[]; total: number }>) => {
        try {
          return await fn();
        } catch (error) {
          // An attribute only one resource type has (userName) simply matches nothing of the other.
          if (error instanceof ScimError && error.scimType === 'invalidFilter')
            return { rows: [] as R[], total: 0, error };
          throw error;
        }
      };
      const userRows = await attempt(() =>
        listScimUsers(ctx, call.principal, everything, { withGroups: wantsGroups(params.projection, false) }),
      );
      const groupRows = await attempt(() => listScimGroups(ctx, call.principal, everything));
      if ('error' in userRows && 'error' in groupRows) throw userRows.error;
      // Users first, then groups; only the requested page is rendered (rendering and projecting
      // every row fetched would cost up to 2,000 resources for a page of one).
      const { startIndex, count } = params.query;
      const from = Math.min(startIndex - 1, userRows.rows.length + groupRows.rows.length);
      const to = Math.min(from + count, userRows.rows.length + groupRows.rows.length);
      const pageUsers = userRows.rows.slice(from, to);
      const pageGroups = groupRows.rows.slice(
        Math.max(0, from - userRows.rows.length),
        Math.max(0, to - userRows.rows.length),
      );
      const page = [
        ...renderUsers(call.baseUrl, pageUsers, params.projection),
        ...(await renderGroups(ctx, call.baseUrl, pageGroups, params.projection, false)),
      ];
      send(call, 200, listResponse(page, userRows.total + groupRows.total, startIndex));
    },
  };
}
