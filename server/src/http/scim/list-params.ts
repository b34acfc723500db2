import type { ListQuery } from '../../directory/scim-users.js';
import { MAX_RESULTS } from '../../scim/core/discovery.js';
import { type Projection, parseAttributeList } from '../../scim/core/render.js';
import { parseFilter } from '../../scim/filter/parse.js';
import { invalidValue } from '../../scim/protocol/error.js';
import type { ScimCall } from './call.js';

const DEFAULT_COUNT = 100;
/**
 * Larger `startIndex` values are read as this one (an empty page), so that `startIndex=1e25` never
 * reaches the database as an OFFSET it cannot hold.
 */
const MAX_START_INDEX = 2_147_483_647;

function int(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  if (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value)) return Number.parseInt(value, 10);
  return undefined;
}

export interface ListParams {
  query: ListQuery;
  projection: Projection;
}

/** List parameters from the query string or a SearchRequest body (RFC 7644 §3.4.2, §3.4.3). */
export function listParams(source: Record<string, unknown>): ListParams {
  // Parameter names are case-insensitive; the first spelling of a name counts. One pass over the
  // source, not one per parameter (this runs for every lookup).
  const byName = new Map<string, unknown>();
  for (const key of Object.keys(source)) {
    const lower = key.toLowerCase();
    if (!byName.has(lower)) byName.set(lower, source[key]);
  }
  const get = (name: string) => byName.get(name.toLowerCase());
  const filterText = get('filter');
  if (filterText !== undefined && typeof filterText !== 'string')
    throw invalidValue('filter must be a string');
  const list = (name: string) => {
    const value = get(name);
    if (Array.isArray(value) && !value.every((item) => typeof item === 'string')) {
      throw invalidValue(`${name} must be a list of attribute path strings`);
    }
    return parseAttributeList(Array.isArray(value) ? value.join(',') : value, name);
  };
  const sortOrder = get('sortOrder');
  const sortBy = get('sortBy');
  return {
    query: {
      filter: filterText ? parseFilter(filterText) : undefined,
      startIndex: Math.min(MAX_START_INDEX, Math.max(1, int(get('startIndex')) ?? 1)),
      count: Math.min(MAX_RESULTS, Math.max(0, int(get('count')) ?? DEFAULT_COUNT)),
      sortBy: typeof sortBy === 'string' ? sortBy : undefined,
      sortOrder:
        typeof sortOrder === 'string' && sortOrder.toLowerCase() === 'descending'
          ? 'descending'
          : 'ascending',
    },
    projection: { attributes: list('attributes'), excludedAttributes: list('excludedAttributes') },
  };
}

/** `attributes` and `excludedAttributes` of the query string, for single-resource responses. */
export function projectionOf(call: ScimCall): Projection {
  return {
    attributes: parseAttributeList(call.query.attributes, 'attributes'),
    excludedAttributes: parseAttributeList(call.query.excludedattributes, 'excludedAttributes'),
  };
}
