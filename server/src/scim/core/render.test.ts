import { describe, expect, it } from 'vitest';
import {
  ALL_RESOURCE_TYPES,
  ALL_SCHEMAS,
  resourceTypeDocument,
  schemaDocument,
  serviceProviderConfig,
} from './discovery.js';
import { excludes, parseAttributeList, project, renderResource, requests } from './render.js';
import { GROUP_RESOURCE, USER_RESOURCE } from './schemas.js';

const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const meta = {
  created: new Date('2026-01-01T00:00:00Z'),
  lastModified: new Date('2026-01-02T00:00:00Z'),
  location: 'https://r/Users/u1',
  version: 3,
};

const user = renderResource(
  USER_RESOURCE,
  'u1',
  {
    userName: 'ada@example.com',
    externalId: 'ext-1',
    name: { givenName: 'Ada', familyName: 'Lovelace' },
    emails: [{ value: 'ada@example.com', type: 'work', primary: true }],
    [ENTERPRISE]: { department: 'R&D', manager: { value: 'm1' } },
  },
  meta,
);

describe('renderResource', () => {
  it('lists the extensions present in schemas and puts manager under the enterprise key', () => {
    expect(user).toEqual({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', ENTERPRISE],
      id: 'u1',
      externalId: 'ext-1',
      userName: 'ada@example.com',
      name: { givenName: 'Ada', familyName: 'Lovelace' },
      emails: [{ value: 'ada@example.com', type: 'work', primary: true }],
      [ENTERPRISE]: { department: 'R&D', manager: { value: 'm1' } },
      meta: {
        resourceType: 'User',
        created: '2026-01-01T00:00:00.000Z',
        lastModified: '2026-01-02T00:00:00.000Z',
        location: 'https://r/Users/u1',
        version: 'W/"3"',
      },
    });
  });
});

describe('project', () => {
  const projectWith = (attributes?: string, excluded?: string) =>
    project(USER_RESOURCE, user, {
      attributes: parseAttributeList(attributes, 'attributes'),
      excludedAttributes: parseAttributeList(excluded, 'excludedAttributes'),
    });

  it('attributes= keeps the listed ones plus schemas and id (Microsoft Postman: userName,emails)', () => {
    // schemas lists only the extensions left in the projection.
    expect(projectWith('userName,emails')).toEqual({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      id: 'u1',
      userName: 'ada@example.com',
      emails: user.emails,
    });
    expect(projectWith('emails[type eq "work"]')).toEqual({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      id: 'u1',
      emails: user.emails,
    });
  });

  it('selects sub-attributes and extension attributes, case-insensitively', () => {
    expect(
      projectWith('NAME.givenname,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department'),
    ).toEqual({
      schemas: user.schemas,
      id: 'u1',
      name: { givenName: 'Ada' },
      [ENTERPRISE]: { department: 'R&D' },
    });
    expect(projectWith(`${ENTERPRISE}:manager.value`)).toMatchObject({
      [ENTERPRISE]: { manager: { value: 'm1' } },
    });
    expect(projectWith('emails.value')).toMatchObject({ emails: [{ value: 'ada@example.com' }] });
  });

  it('excludedAttributes removes, but never id or schemas', () => {
    const projected = projectWith(undefined, 'emails,id,schemas,name.familyName,meta');
    expect(projected).toEqual({
      schemas: user.schemas,
      id: 'u1',
      externalId: 'ext-1',
      userName: 'ada@example.com',
      name: { givenName: 'Ada' },
      [ENTERPRISE]: { department: 'R&D', manager: { value: 'm1' } },
    });
  });

  it('knows whether members are wanted', () => {
    const list = (a?: string, e?: string) => ({
      attributes: parseAttributeList(a, 'attributes'),
      excludedAttributes: parseAttributeList(e, 'excludedAttributes'),
    });
    expect(excludes(list(undefined, 'members'), 'members')).toBe(true);
    expect(excludes(list('displayName'), 'members')).toBe(true);
    expect(excludes(list(), 'members')).toBe(false);
    expect(requests(list('displayName,members'), 'members')).toBe(true);
    expect(requests(list(), 'members')).toBe(false);
  });

  it('rejects attribute lists that are no paths', () => {
    expect(() => parseAttributeList('a b', 'attributes')).toThrow(/attributes/);
  });
});

describe('discovery documents', () => {
  it('ServiceProviderConfig advertises PATCH, filter, sort, ETags and bearer tokens; no bulk', () => {
    const config = serviceProviderConfig('https://r/scim/v2/c1');
    expect(config).toMatchObject({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
      patch: { supported: true },
      bulk: { supported: false },
      filter: { supported: true, maxResults: 1000 },
      sort: { supported: true },
      etag: { supported: true },
      authenticationSchemes: [{ type: 'oauthbearertoken', primary: true }],
      meta: { location: 'https://r/scim/v2/c1/ServiceProviderConfig' },
    });
  });

  it('describe every schema and resource type with RFC 7643 characteristics', () => {
    const docs = ALL_SCHEMAS.map((s) => schemaDocument(s, 'https://r'));
    expect(docs.map((d) => d.id)).toEqual([
      'urn:ietf:params:scim:schemas:core:2.0:User',
      'urn:ietf:params:scim:schemas:core:2.0:Group',
      ENTERPRISE,
      'urn:ietf:params:scim:schemas:extension:roster:2.0:User',
    ]);
    const userName = docs[0]!.attributes.find((a) => a.name === 'userName');
    expect(userName).toMatchObject({
      type: 'string',
      required: true,
      caseExact: false,
      uniqueness: 'server',
    });
    const types = ALL_RESOURCE_TYPES.map((r) => resourceTypeDocument(r, 'https://r'));
    expect(types[0]).toMatchObject({
      id: 'User',
      endpoint: '/Users',
      schemaExtensions: [{ schema: ENTERPRISE, required: false }, expect.anything()],
    });
    expect(types[1]).toMatchObject({ id: 'Group', endpoint: '/Groups', schema: GROUP_RESOURCE.schema.id });
  });
});
