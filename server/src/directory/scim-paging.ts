import { type RawBuilder, sql } from 'kysely';
import type { Filter } from '../scim/filter/ast.js';

/** One page of a SCIM list (users or groups): the paging rules both share, in one place. */

export interface ListQuery {
  filter?: Filter | undefined;
  startIndex: number;
  count: number;
  sortBy?: string | undefined;
  sortOrder?: 'ascending' | 'descending' | undefined;
  /**
   * The id of the row just before `startIndex` in the default (id) order, when known from the
   * previous page: the page is then read with `id > afterId` instead of OFFSET, which costs the
   * same at page 100 as at page 1 (IdP imports walk every page in order).
   */
  afterId?: string | undefined;
}

export interface ListResult<R> {
  rows: R[];
  total: number;
}

/** How to read the page: order, then either `id > afterId` (keyset) or OFFSET, and LIMIT. */
export interface PagePlan {
  order: RawBuilder<unknown>;
  afterId: string | undefined;
  offset: number;
  limit: number;
}

/**
 * Reads a page with `fetch` and the total with `count`. The order is the sort attribute, then the
 * id (stable across pages); keyset paging applies in the default order only. A first page that is
 * not full is the whole result: the count is skipped (the IdP lookup case).
 */
export async function listPage<R>(
  query: ListQuery,
  sort: RawBuilder<unknown> | undefined,
  alias: 'u' | 'g',
  fetch: (plan: PagePlan) => Promise<R[]>,
  count: () => Promise<number | string | bigint>,
): Promise<ListResult<R>> {
  const id = sql.ref(`${alias}.id`);
  const direction = sql.raw(query.sortOrder === 'descending' ? 'desc' : 'asc');
  const keyset = query.afterId !== undefined && !sort;
  const rows =
    query.count === 0
      ? []
      : await fetch({
          order: sort ? sql`${sort} ${direction}, ${id}` : sql`${id}`,
          afterId: keyset ? query.afterId : undefined,
          offset: keyset ? 0 : query.startIndex - 1,
          limit: query.count,
        });
  const total = query.startIndex === 1 && rows.length < query.count ? rows.length : Number(await count());
  return { rows, total };
}
