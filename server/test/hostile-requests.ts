import fc from 'fast-check';
import { PATCH_OP } from './scim-helpers.js';

/**
 * Generators of hostile SCIM and /v1 requests (filters, PATCH paths and values, projections, nested
 * and oversized JSON, NUL and unicode, other tenants' ids), sent by tenant A with its SCIM token and
 * a /v1 key: used by hostile-input.test.ts and by the long fuzz run (fuzz.ts).
 */

export interface HostileRequest {
  kind: 'scim' | 'v1';
  method: string;
  path: string;
  body?: string;
  contentType?: string;
}

/** Percent-encodes the UTF-8 bytes of any string, lone surrogates included (encodeURIComponent throws). */
export function enc(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9_.~-]/.test(ch) ? ch : `%${byte.toString(16).padStart(2, '0').toUpperCase()}`;
  }
  return out;
}

/** What the generators aim at: the attacker's own ids, the other tenant's, and where the attacker is. */
export interface Targets {
  idsOfA: readonly string[];
  idsOfB: readonly string[];
  a: { organizationId: string; connectionId: string };
}

/** Built once the tenants exist: the generators aim at their real ids. */
export function arbitraries({ idsOfA, idsOfB, a }: Targets): {
  scimRequest: fc.Arbitrary<HostileRequest>;
  v1Request: fc.Arbitrary<HostileRequest>;
} {
  const nasty = fc.constantFrom(
    '\u0000',
    'a\u0000b',
    '\ud800',
    '\udfff x',
    '😀',
    '\u202e',
    'é',
    'ß',
    '"',
    '\\',
    "'; drop table users; --",
    '%00',
    '',
    ' ',
    'x'.repeat(5000),
  );
  const text = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 12 }), nasty);
  const anyId = () =>
    fc.oneof(
      fc.constantFrom(...idsOfA, ...idsOfB),
      fc.constantFrom('usr_00000000000000000000000000', 'grp_x', 'nope', '..', '%2e%2e', 'usr_\u0000'),
      text,
    );

  const ATTRS = [
    'userName',
    'active',
    'emails',
    'emails.value',
    'name.givenName',
    'displayName',
    'externalId',
    'id',
    'members',
    'members.value',
    'groups',
    'meta.created',
    'meta.lastModified',
    'title',
    'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager',
    'urn:ietf:params:scim:schemas:extension:roster:2.0:User:level',
    'urn:ietf:params:scim:schemas:core:2.0:User:userName',
  ];
  const attr = fc.oneof(fc.constantFrom(...ATTRS), text);
  const compareOp = fc.oneof(
    fc.constantFrom('eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le', 'Eq', 'pr'),
    text,
  );
  const literal = fc.oneof(
    text.map((s) => JSON.stringify(s)),
    anyId().map((s) => JSON.stringify(s)),
    fc.constantFrom('true', 'false', 'null', '1e400', '-0', '42', '"2026-01-01T00:00:00Z"', 'bare'),
  );
  const leaf = fc
    .tuple(attr, compareOp, literal)
    .map(([x, o, v]) => (o === 'pr' ? `${x} pr` : `${x} ${o} ${v}`));
  const filter: fc.Arbitrary<string> = fc.letrec((tie) => ({
    f: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.tuple(tie('f'), fc.constantFrom('and', 'or', 'AND'), tie('f')).map((p) => p.join(' ')),
      tie('f').map((f) => `not (${f})`),
      fc.tuple(fc.constantFrom('emails', 'members', 'roles', 'x'), leaf).map(([x, l]) => `${x}[${l}]`),
      fc.integer({ min: 1, max: 3000 }).map((n) => `${'('.repeat(n)}userName eq "a"${')'.repeat(n)}`),
      text,
    ),
  })).f as fc.Arbitrary<string>;

  const projection = fc.oneof(
    fc.array(attr, { maxLength: 8 }).map((list) => list.join(',')),
    fc.integer({ min: 90, max: 2000 }).map((n) => Array.from({ length: n }, (_, i) => `x${i}`).join(',')),
    fc.integer({ min: 1, max: 1500 }).map((n) => 'userName,'.repeat(n)),
    text,
  );
  const number = fc.oneof(
    fc.integer(),
    fc.constantFrom('1e25', '9'.repeat(30), '-1', '0', 'NaN', '1.5', '', 'abc', '\u0000'),
  );

  /** JSON nested `depth` deep, as text (JSON.stringify would recurse). */
  const deepJson = fc
    .tuple(fc.integer({ min: 20, max: 30_000 }), fc.boolean())
    .map(([depth, arrays]) =>
      arrays ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
    );
  const jsonValue = fc.jsonValue({ maxDepth: 4 });
  const anyBody: fc.Arbitrary<string> = fc.oneof(
    jsonValue.map((v) => JSON.stringify(v)),
    deepJson,
    text,
    fc.constantFrom('{', '{"schemas":', 'null', '[]', '""', `{"x":"${'y'.repeat(300_000)}"}`),
  );

  const patchPath = fc.oneof(
    attr,
    fc
      .tuple(fc.constantFrom('emails', 'members', 'addresses', 'phoneNumbers'), leaf)
      .map(([x, l]) => `${x}[${l}]`),
    fc.tuple(fc.constantFrom('emails', 'addresses'), leaf, attr).map(([x, l, s]) => `${x}[${l}].${s}`),
    fc.constant('members[value eq "x"]'),
  );
  const patchValue = fc.oneof(
    jsonValue,
    text,
    fc.array(
      anyId().map((value) => ({ value })),
      { maxLength: 5 },
    ),
    fc.constantFrom('True', 'False', null, { active: false }, { 'name.givenName': '\u0000' }),
  );
  const operation = fc.record(
    {
      op: fc.oneof(fc.constantFrom('add', 'remove', 'replace', 'Replace', 'REMOVE'), text),
      path: patchPath,
      value: patchValue,
    },
    { requiredKeys: ['op'] },
  );
  const patchBody = fc.oneof(
    fc
      .record({
        schemas: fc.oneof(fc.constant([PATCH_OP]), fc.constant(undefined), fc.array(text, { maxLength: 2 })),
        Operations: fc.array(operation, { minLength: 0, maxLength: 5 }),
      })
      .map((v) => JSON.stringify(v)),
    anyBody,
  );
  const resourceBody = fc.oneof(
    fc
      .record(
        {
          schemas: fc.oneof(
            fc.constant(['urn:ietf:params:scim:schemas:core:2.0:User']),
            fc.constant(['urn:ietf:params:scim:schemas:core:2.0:Group']),
            fc.constant(['urn:scim:schemas:core:2.0']),
            fc.array(text, { maxLength: 2 }),
          ),
          userName: text,
          displayName: text,
          externalId: text,
          active: fc.oneof(fc.boolean(), text),
          emails: fc.array(fc.record({ value: text, type: text, primary: fc.oneof(fc.boolean(), text) }), {
            maxLength: 3,
          }),
          members: fc.array(
            anyId().map((value) => ({ value })),
            { maxLength: 4 },
          ),
          'urn:ietf:params:scim:schemas:extension:roster:2.0:User': fc.dictionary(text, jsonValue, {
            maxKeys: 4,
          }),
        },
        { requiredKeys: [] },
      )
      .map((v) => JSON.stringify(v)),
    anyBody,
  );

  const scimRequest: fc.Arbitrary<HostileRequest> = fc.oneof(
    fc
      .tuple(fc.constantFrom('Users', 'Groups'), filter, fc.option(projection), number, number)
      .map(([type, f, p, startIndex, count]) => ({
        kind: 'scim' as const,
        method: 'GET',
        path: `/${type}?filter=${enc(f)}${p === null ? '' : `&attributes=${enc(p)}`}&startIndex=${enc(String(startIndex))}&count=${enc(String(count))}`,
      })),
    fc
      .tuple(fc.constantFrom('Users', 'Groups'), projection, fc.boolean(), anyId())
      .map(([type, p, excluded, id]) => ({
        kind: 'scim' as const,
        method: 'GET',
        path: `/${type}/${enc(id)}?${excluded ? 'excludedAttributes' : 'attributes'}=${enc(p)}`,
      })),
    fc
      .tuple(
        fc.constantFrom('/Users/.search', '/Groups/.search', '/.search'),
        fc.record(
          {
            schemas: fc.constant(['urn:ietf:params:scim:api:messages:2.0:SearchRequest']),
            filter: fc.oneof(filter, jsonValue),
            attributes: fc.oneof(projection, fc.array(attr, { maxLength: 5 }), jsonValue),
            excludedAttributes: fc.oneof(projection, jsonValue),
            startIndex: fc.oneof(number, fc.constantFrom(1e25, -1e25, 1.5)),
            count: fc.oneof(number, fc.constant(1e25)),
            sortBy: fc.oneof(attr, jsonValue),
            sortOrder: fc.oneof(text, fc.constantFrom('descending', 'ascending')),
          },
          { requiredKeys: [] },
        ),
      )
      .map(([path, body]) => ({ kind: 'scim' as const, method: 'POST', path, body: JSON.stringify(body) })),
    fc.tuple(fc.constantFrom('Users', 'Groups'), anyId(), patchBody).map(([type, id, body]) => ({
      kind: 'scim' as const,
      method: 'PATCH',
      path: `/${type}/${enc(id)}`,
      body,
    })),
    fc.tuple(fc.constantFrom('Users', 'Groups'), resourceBody).map(([type, body]) => ({
      kind: 'scim' as const,
      method: 'POST',
      path: `/${type}`,
      body,
    })),
    fc.tuple(fc.constantFrom('Users', 'Groups'), anyId(), resourceBody).map(([type, id, body]) => ({
      kind: 'scim' as const,
      method: 'PUT',
      path: `/${type}/${enc(id)}`,
      body,
    })),
    fc.tuple(fc.constantFrom('Users', 'Groups'), fc.constantFrom(...idsOfB)).map(([type, id]) => ({
      kind: 'scim' as const,
      method: 'DELETE',
      path: `/${type}/${id}`,
    })),
    fc
      .tuple(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS'), text)
      .map(([method, rest]) => ({
        kind: 'scim' as const,
        method,
        path: `/${enc(rest)}`,
      })),
  );

  const v1Request: fc.Arbitrary<HostileRequest> = fc.oneof(
    fc
      .tuple(
        fc.constantFrom(
          '/organizations',
          '/users',
          '/groups',
          '/connections',
          '/events',
          '/roles',
          '/webhook_endpoints',
        ),
        fc.dictionary(
          fc.constantFrom('limit', 'after', 'before', 'email', 'status', 'types', 'organization_id', 'q'),
          fc.oneof(text, number.map(String)),
          { maxKeys: 3 },
        ),
      )
      .map(([path, query]) => ({
        kind: 'v1' as const,
        method: 'GET',
        path: `${path}?${Object.entries(query)
          .map(([k, v]) => `${k}=${enc(v)}`)
          .join('&')}`,
      })),
    fc
      .tuple(
        fc.constantFrom(
          '/organizations/{org}',
          '/organizations/{org}/memberships',
          '/users/{id}',
          '/groups/{id}',
          '/groups/{id}/members',
          '/connections/{id}',
          '/connections/{id}/sync',
          '/memberships/{id}/explain',
          '/roles/{id}',
          '/sessions/{id}',
        ),
        anyId(),
      )
      .map(([template, id]) => ({
        kind: 'v1' as const,
        method: 'GET',
        path: template.replace('{org}', enc(id)).replace('{id}', enc(id)),
      })),
    fc
      .tuple(
        fc.constantFrom(
          ['POST', '/organizations'],
          ['PATCH', '/organizations/{org}'],
          ['POST', '/organizations/{org}/connections'],
          ['POST', '/organizations/{org}/memberships'],
          ['POST', '/roles'],
          ['PUT', '/connections/{conn}/role_mappings'],
          ['PUT', '/connections/{conn}/attribute_mappings'],
          ['POST', '/sessions'],
        ),
        anyBody,
        fc.constantFrom('application/json', 'application/scim+json', 'text/plain'),
      )
      .map(([[method, template], body, contentType]) => ({
        kind: 'v1' as const,
        method: method!,
        path: template!.replace('{org}', a.organizationId).replace('{conn}', a.connectionId),
        body,
        contentType,
      })),
    fc
      .record(
        {
          name: text,
          slug: text,
          default_role: text,
          metadata: jsonValue,
        },
        { requiredKeys: [] },
      )
      .map((body) => ({
        kind: 'v1' as const,
        method: 'POST',
        path: '/organizations',
        body: JSON.stringify(body),
      })),
  );
  return { scimRequest, v1Request };
}
