import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ScimError } from '../protocol/error.js';
import type { Filter } from './ast.js';
import { parseFilter, parsePatchPath } from './parse.js';
import { serializeFilter, serializePatchPath } from './serialize.js';

const eq = (attr: string, value: unknown, extra: Record<string, string> = {}) => ({
  op: 'eq',
  path: { attr, ...extra },
  value,
});

describe('parseFilter', () => {
  it.each<[string, string, unknown]>([
    // Okta SCIM 2.0 reference, lookup before create
    ['okta lookup', 'userName eq "test.user@okta.local"', eq('userName', 'test.user@okta.local')],
    // Entra: lookup with a GUID; `+` already decoded to spaces by the query-string parser
    [
      'entra guid',
      'userName eq "cf4d78e8-cc4f-4d5d-b8b9-183561c0104a"',
      eq('userName', 'cf4d78e8-cc4f-4d5d-b8b9-183561c0104a'),
    ],
    [
      'entra externalId',
      'externalId eq "9edf3db5-f590-4367-a7b6-d76747c0a509"',
      eq('externalId', '9edf3db5-f590-4367-a7b6-d76747c0a509'),
    ],
    ['entra group', 'displayName eq "displayName"', eq('displayName', 'displayName')],
    // PingOne: mixed-case operator, lower-case attribute
    ['ping', 'username Eq "jdoe"', eq('username', 'jdoe')],
    ['keywords in any case', 'active EQ TRUE', eq('active', true)],
    ['null', 'title eq null', eq('title', null)],
    ['number', 'meta.version gt 10', { op: 'gt', path: { attr: 'meta', sub: 'version' }, value: 10 }],
    ['escaped quotes', 'displayName eq "say \\"hi\\" \\\\ there"', eq('displayName', 'say "hi" \\ there')],
    ['unicode escape', 'displayName eq "caf\\u00e9"', eq('displayName', 'café')],
    [
      'bare word value (Microsoft Postman suite)',
      'DisplayName eq Group1DisplayName',
      eq('DisplayName', 'Group1DisplayName'),
    ],
    ['present', 'title pr', { op: 'pr', path: { attr: 'title' } }],
    [
      'sub-attribute',
      'name.familyName co "O\'Malley"',
      { op: 'co', path: { attr: 'name', sub: 'familyName' }, value: "O'Malley" },
    ],
    [
      'extension URN',
      'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"',
      eq('employeeNumber', '701984', { uri: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User' }),
    ],
    [
      'extension URN with sub-attribute',
      'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"',
      {
        op: 'eq',
        path: {
          uri: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
          attr: 'manager',
          sub: 'value',
        },
        value: '26118915-6090-4610-87e4-49d8ca9f808d',
      },
    ],
    [
      'value path',
      'emails[type eq "work" and value co "@example.com"]',
      {
        op: 'valuePath',
        path: { attr: 'emails' },
        filter: {
          op: 'and',
          left: eq('type', 'work'),
          right: { op: 'co', path: { attr: 'value' }, value: '@example.com' },
        },
      },
    ],
    [
      // Entra's matching attribute: a comparison after the brackets
      'value path with trailing sub-attribute comparison',
      'emails[type eq "work"].value eq "user@contoso.com"',
      {
        op: 'valuePath',
        path: { attr: 'emails' },
        filter: { op: 'and', left: eq('type', 'work'), right: eq('value', 'user@contoso.com') },
      },
    ],
    [
      'precedence: and binds tighter than or',
      'a eq "1" or b eq "2" and c eq "3"',
      { op: 'or', left: eq('a', '1'), right: { op: 'and', left: eq('b', '2'), right: eq('c', '3') } },
    ],
    [
      'parentheses and not',
      'not (a eq "1" or b eq "2") and c pr',
      {
        op: 'and',
        left: { op: 'not', filter: { op: 'or', left: eq('a', '1'), right: eq('b', '2') } },
        right: { op: 'pr', path: { attr: 'c' } },
      },
    ],
    [
      // AWS-style group membership query
      'id and members',
      'id eq "g1" and members eq "u1"',
      { op: 'and', left: eq('id', 'g1'), right: eq('members', 'u1') },
    ],
    [
      'meta dates',
      'meta.lastModified gt "2011-05-13T04:42:34Z"',
      { op: 'gt', path: { attr: 'meta', sub: 'lastModified' }, value: '2011-05-13T04:42:34Z' },
    ],
  ])('%s', (_, input, want) => {
    expect(parseFilter(input)).toEqual(want);
  });

  it.each([
    ['', 'empty'],
    ['userName', 'operator'],
    ['userName eq', 'value'],
    ['userName xx "a"', 'operator'],
    ['userName eq "unterminated', 'unterminated'],
    ['(userName eq "a"', '")"'],
    ['userName eq "a")', 'unexpected'],
    ['emails[type eq "work"', '"]"'],
    ['emails[type eq "work"] eq "x"', 'unexpected'],
    ['emails[types[x eq "y"]]', 'nest'],
    ['userName eq "a" and', 'attribute'],
    ['"a" eq userName', 'attribute'],
    ['user name eq "a"', 'operator'],
    ['name.given.name eq "a"', 'attribute path'],
    ['userName eq and', 'value'],
    ['userName eq "\\x"', 'escape'],
  ])('rejects %j with 400 invalidFilter', (input, hint) => {
    try {
      parseFilter(input);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ScimError);
      expect((error as ScimError).status).toBe(400);
      expect((error as ScimError).scimType).toBe('invalidFilter');
      expect((error as ScimError).detail).toContain(hint);
    }
  });

  it('rejects pathological depth and length without overflowing the stack', () => {
    const deep = `${'('.repeat(2000)}a eq "b"${')'.repeat(2000)}`;
    expect(() => parseFilter(deep)).toThrow(ScimError);
    expect(() => parseFilter(`a eq "${'x'.repeat(5000)}"`)).toThrow(/longer than/);
    const deepNot = `${'not ('.repeat(100)}a pr${')'.repeat(100)}`;
    expect(() => parseFilter(deepNot)).toThrow(/deeper/);
  });

  it('treats every whitespace character as a separator (a form feed once looped until out of memory)', () => {
    for (const space of ['\f', '\v', '\u00a0', '\u2028', '\ufeff']) {
      expect(parseFilter(`userName${space}eq${space}"a"`)).toEqual(parseFilter('userName eq "a"'));
      expect(() => parseFilter(`members.value 1${space}\u0010 "x"`)).toThrow(ScimError);
      expect(() => parsePatchPath(`emails[type eq${space}"work"]`)).not.toThrow();
    }
  });

  it('refuses NUL anywhere in a filter or path', () => {
    for (const filter of ['userName eq "a\u0000"', 'user\u0000Name eq "a"', 'urn:x\u0000:y eq "a"']) {
      expect(() => parseFilter(filter)).toThrow(/NUL/);
    }
    expect(() => parsePatchPath('emails[value eq "\u0000"]')).toThrow(/NUL/);
  });
});

describe('parsePatchPath', () => {
  it.each<[string, unknown]>([
    ['active', { attr: 'active' }],
    ['name.givenName', { attr: 'name', sub: 'givenName' }],
    ['emails[type eq "work"].value', { attr: 'emails', filter: eq('type', 'work'), sub: 'value' }],
    [
      'members[value eq "7f4bc1a3-285e-48ae-8202-5accb43efb0e"]',
      { attr: 'members', filter: eq('value', '7f4bc1a3-285e-48ae-8202-5accb43efb0e') },
    ],
    ['roles[primary eq "True"].value', { attr: 'roles', filter: eq('primary', 'True'), sub: 'value' }],
    [
      'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager',
      { uri: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User', attr: 'manager' },
    ],
    [
      'addresses[type eq "work"].streetAddress',
      { attr: 'addresses', filter: eq('type', 'work'), sub: 'streetAddress' },
    ],
  ])('%s', (input, want) => {
    expect(parsePatchPath(input)).toEqual(want);
    expect(parsePatchPath(serializePatchPath(parsePatchPath(input)))).toEqual(want);
  });

  it.each([
    '',
    'emails[type eq "work"',
    'emails[type eq "work"]value',
    'name.givenName[x eq "y"]',
    'a b',
    'members[value eq "x" junk]',
  ])('rejects %j with 400 invalidPath', (input) => {
    try {
      parsePatchPath(input);
      expect.unreachable();
    } catch (error) {
      expect((error as ScimError).scimType).toBe('invalidPath');
    }
  });
});

// Property tests: random ASTs survive serialize -> parse, and random text never escapes as
// anything but a ScimError 400 (the HTTP layer turns that into invalidFilter, never a 500).
const attrName = fc
  .stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,8}$/)
  .filter(
    (s) =>
      ![
        'and',
        'or',
        'not',
        'pr',
        'eq',
        'ne',
        'co',
        'sw',
        'ew',
        'gt',
        'ge',
        'lt',
        'le',
        'true',
        'false',
        'null',
      ].includes(s.toLowerCase()),
  );
const attrPath = fc.record(
  {
    uri: fc.constantFrom('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User', 'urn:x:y'),
    attr: attrName,
    sub: attrName,
  },
  { requiredKeys: ['attr'] },
);
const value = fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.integer({ min: -1e6, max: 1e6 }));
const compareOp = fc.constantFrom('eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le');
const simple: fc.Arbitrary<Filter> = fc.oneof(
  fc.record({ op: compareOp, path: attrPath, value }) as fc.Arbitrary<Filter>,
  fc.record({ op: fc.constant('pr' as const), path: attrPath }),
);
const { filter: filterArb } = fc.letrec<{ filter: Filter; inner: Filter }>((tie) => ({
  inner: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    simple,
    fc.record({
      op: fc.constantFrom('and' as const, 'or' as const),
      left: tie('inner'),
      right: tie('inner'),
    }),
    fc.record({ op: fc.constant('not' as const), filter: tie('inner') }),
  ),
  filter: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('inner'),
    fc.record({
      op: fc.constant('valuePath' as const),
      path: fc.record({ attr: attrName }),
      filter: tie('inner') as fc.Arbitrary<Filter>,
    }) as fc.Arbitrary<Filter>,
    fc.record({
      op: fc.constantFrom('and' as const, 'or' as const),
      left: tie('filter'),
      right: tie('filter'),
    }),
  ),
}));

describe('filter properties', () => {
  it('parse(serialize(ast)) equals ast', () => {
    fc.assert(
      fc.property(filterArb, (ast) => {
        expect(parseFilter(serializeFilter(ast))).toEqual(ast);
      }),
      { numRuns: 2000 },
    );
  });

  it('any input either parses or fails with a 400 ScimError', () => {
    const alphabet = fc.constantFrom(...'abc eqEQ ()[]."\\:andornot pr12 true null urn,'.split(''));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: alphabet, maxLength: 60 })), (input) => {
        try {
          parseFilter(input);
        } catch (error) {
          expect(error).toBeInstanceOf(ScimError);
          expect((error as ScimError).status).toBe(400);
        }
      }),
      { numRuns: 5000 },
    );
  });
});
