/**
 * Schema definitions (RFC 7643 §2.2, §4, §7, §8.7.1). Attribute characteristics drive input
 * normalisation (types, mutability), filters (caseExact), responses (returned) and `/Schemas`.
 */

export const SCHEMA_URNS = {
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  group: 'urn:ietf:params:scim:schemas:core:2.0:Group',
  enterpriseUser: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
  rosterUser: 'urn:ietf:params:scim:schemas:extension:roster:2.0:User',
  serviceProviderConfig: 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig',
  resourceType: 'urn:ietf:params:scim:schemas:core:2.0:ResourceType',
  schema: 'urn:ietf:params:scim:schemas:core:2.0:Schema',
} as const;

export type AttributeType =
  | 'string'
  | 'boolean'
  | 'decimal'
  | 'integer'
  | 'dateTime'
  | 'reference'
  | 'complex';
export type Mutability = 'readOnly' | 'readWrite' | 'immutable' | 'writeOnly';
export type Returned = 'always' | 'never' | 'default' | 'request';
export type Uniqueness = 'none' | 'server' | 'global';

export interface AttributeDef {
  readonly name: string;
  readonly type: AttributeType;
  readonly multiValued: boolean;
  readonly description: string;
  readonly required: boolean;
  readonly caseExact: boolean;
  readonly mutability: Mutability;
  readonly returned: Returned;
  readonly uniqueness: Uniqueness;
  readonly canonicalValues?: readonly string[];
  readonly referenceTypes?: readonly string[];
  readonly subAttributes?: readonly AttributeDef[];
}

export interface SchemaDef {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly attributes: readonly AttributeDef[];
  /** Accepts attributes it does not declare (the Roster extension is free-form). */
  readonly open?: boolean;
}

type Options = Partial<Omit<AttributeDef, 'name' | 'type' | 'subAttributes'>>;

function attr(name: string, type: AttributeType, description: string, options: Options = {}): AttributeDef {
  return {
    name,
    type,
    multiValued: false,
    description,
    required: false,
    caseExact: false,
    mutability: 'readWrite',
    returned: 'default',
    uniqueness: 'none',
    ...options,
  };
}

function complex(
  name: string,
  description: string,
  subAttributes: AttributeDef[],
  options: Options = {},
): AttributeDef {
  return { ...attr(name, 'complex', description, options), subAttributes };
}

/** The `value`/`display`/`type`/`primary` shape shared by emails, phoneNumbers, ims, photos, … */
function multiValuedComplex(
  name: string,
  description: string,
  valueType: AttributeType = 'string',
  canonicalTypes?: string[],
): AttributeDef {
  return complex(
    name,
    description,
    [
      // A reference must say what it refers to (RFC 7643 §7): clients that build their model from
      // /Schemas refuse the whole schema otherwise. Photos are URLs of external resources.
      attr(
        'value',
        valueType,
        `The value of the ${name} entry.`,
        valueType === 'reference' ? { referenceTypes: ['external'] } : {},
      ),
      attr('display', 'string', 'A human-readable name, primarily used for display purposes.'),
      attr(
        'type',
        'string',
        'A label indicating the function of the entry.',
        canonicalTypes ? { canonicalValues: canonicalTypes } : {},
      ),
      attr('primary', 'boolean', 'Whether this is the primary entry; true at most once.'),
    ],
    { multiValued: true },
  );
}

/** id, externalId and meta: common to every resource (RFC 7643 §3.1). */
export const COMMON_ATTRIBUTES: readonly AttributeDef[] = [
  attr('id', 'string', 'Unique identifier of the resource, issued by the service provider.', {
    caseExact: true,
    mutability: 'readOnly',
    returned: 'always',
    uniqueness: 'server',
  }),
  attr('externalId', 'string', "The client's identifier of the resource.", { caseExact: true }),
  complex(
    'meta',
    'Resource metadata.',
    [
      attr('resourceType', 'string', 'The name of the resource type.', {
        caseExact: true,
        mutability: 'readOnly',
      }),
      attr('created', 'dateTime', 'When the resource was added.', { mutability: 'readOnly' }),
      attr('lastModified', 'dateTime', 'When the resource last changed.', { mutability: 'readOnly' }),
      attr('location', 'reference', 'The URI of the resource.', { caseExact: true, mutability: 'readOnly' }),
      attr('version', 'string', 'The version (weak ETag) of the resource.', {
        caseExact: true,
        mutability: 'readOnly',
      }),
    ],
    { mutability: 'readOnly' },
  ),
];

export const USER_SCHEMA: SchemaDef = {
  id: SCHEMA_URNS.user,
  name: 'User',
  description: 'User Account',
  attributes: [
    attr('userName', 'string', 'Unique identifier for the user, used to sign in; case-insensitive.', {
      required: true,
      uniqueness: 'server',
    }),
    complex('name', "The components of the user's name.", [
      attr('formatted', 'string', 'The full name, formatted for display.'),
      attr('familyName', 'string', 'The family name.'),
      attr('givenName', 'string', 'The given name.'),
      attr('middleName', 'string', 'The middle name(s).'),
      attr('honorificPrefix', 'string', 'The honorific prefix(es).'),
      attr('honorificSuffix', 'string', 'The honorific suffix(es).'),
    ]),
    attr('displayName', 'string', 'The name of the user, suitable for display.'),
    attr('nickName', 'string', 'The casual way to address the user.'),
    attr('profileUrl', 'reference', "A URI of the user's online profile.", { referenceTypes: ['external'] }),
    attr('title', 'string', "The user's title, such as 'Vice President'."),
    attr('userType', 'string', 'The relationship between the organization and the user.'),
    attr('preferredLanguage', 'string', "The user's preferred written or spoken language."),
    attr('locale', 'string', "The user's default location for localization."),
    attr('timezone', 'string', "The user's time zone in IANA format."),
    attr('active', 'boolean', "The user's administrative status; false ends their access."),
    attr('password', 'string', 'Accepted and discarded: Roster does not store passwords.', {
      mutability: 'writeOnly',
      returned: 'never',
    }),
    multiValuedComplex('emails', 'Email addresses for the user.', 'string', ['work', 'home', 'other']),
    multiValuedComplex('phoneNumbers', 'Phone numbers for the user.', 'string', [
      'work',
      'home',
      'mobile',
      'fax',
      'pager',
      'other',
    ]),
    multiValuedComplex('ims', 'Instant messaging addresses for the user.'),
    multiValuedComplex('photos', 'URLs of photos of the user.', 'reference', ['photo', 'thumbnail']),
    complex(
      'addresses',
      'Physical mailing addresses for the user.',
      [
        attr('formatted', 'string', 'The full mailing address, formatted for display.'),
        attr('streetAddress', 'string', 'The full street address component.'),
        attr('locality', 'string', 'The city or locality component.'),
        attr('region', 'string', 'The state or region component.'),
        attr('postalCode', 'string', 'The zip code or postal code component.'),
        attr('country', 'string', 'The country name component.'),
        attr('type', 'string', 'A label indicating the function of the address.', {
          canonicalValues: ['work', 'home', 'other'],
        }),
        attr('primary', 'boolean', 'Whether this is the primary address.'),
      ],
      { multiValued: true },
    ),
    complex(
      'groups',
      'The groups the user belongs to, as managed through /Groups.',
      [
        attr('value', 'string', 'The id of the group.', { mutability: 'readOnly' }),
        attr('$ref', 'reference', 'The URI of the group.', {
          mutability: 'readOnly',
          referenceTypes: ['Group'],
        }),
        attr('display', 'string', 'The display name of the group.', { mutability: 'readOnly' }),
        attr('type', 'string', 'direct', { mutability: 'readOnly', canonicalValues: ['direct', 'indirect'] }),
      ],
      { multiValued: true, mutability: 'readOnly' },
    ),
    multiValuedComplex('entitlements', 'Entitlements of the user.'),
    multiValuedComplex('roles', 'Roles of the user (values as the IdP sends them).'),
    multiValuedComplex('x509Certificates', 'X.509 certificates of the user (DER, base64).', 'string'),
  ],
};

export const ENTERPRISE_USER_SCHEMA: SchemaDef = {
  id: SCHEMA_URNS.enterpriseUser,
  name: 'EnterpriseUser',
  description: 'Enterprise User',
  attributes: [
    attr('employeeNumber', 'string', 'Identifier assigned to the user by the organization.'),
    attr('costCenter', 'string', 'Cost center.'),
    attr('organization', 'string', 'Organization.'),
    attr('division', 'string', 'Division.'),
    attr('department', 'string', 'Department.'),
    complex('manager', "The user's manager.", [
      attr('value', 'string', 'The id of the manager in this service provider.', { caseExact: true }),
      attr('$ref', 'reference', 'The URI of the manager.', { referenceTypes: ['User'] }),
      attr('displayName', 'string', 'The display name of the manager.'),
    ]),
  ],
};

export const ROSTER_USER_SCHEMA: SchemaDef = {
  id: SCHEMA_URNS.rosterUser,
  name: 'RosterUser',
  description:
    "Free-form custom attributes (for example department, employee_id, cost_center). Any attribute is accepted; mapped attributes land in the member's metadata.",
  attributes: [],
  open: true,
};

export const GROUP_SCHEMA: SchemaDef = {
  id: SCHEMA_URNS.group,
  name: 'Group',
  description: 'Group',
  attributes: [
    attr('displayName', 'string', 'A human-readable name for the group.', { required: true }),
    complex(
      'members',
      'The members of the group (users of this connection), by id.',
      [
        attr('value', 'string', 'The id of the member.', { caseExact: true, mutability: 'immutable' }),
        attr('$ref', 'reference', 'The URI of the member.', {
          mutability: 'immutable',
          referenceTypes: ['User'],
        }),
        attr('display', 'string', 'The display name of the member.', { mutability: 'readOnly' }),
        attr('type', 'string', 'The type of the member.', {
          mutability: 'immutable',
          canonicalValues: ['User'],
        }),
      ],
      { multiValued: true },
    ),
  ],
};

export interface ResourceTypeDef {
  readonly name: 'User' | 'Group';
  readonly endpoint: '/Users' | '/Groups';
  readonly description: string;
  readonly schema: SchemaDef;
  readonly extensions: readonly { schema: SchemaDef; required: boolean }[];
}

export const USER_RESOURCE: ResourceTypeDef = {
  name: 'User',
  endpoint: '/Users',
  description: 'User Account',
  schema: USER_SCHEMA,
  extensions: [
    { schema: ENTERPRISE_USER_SCHEMA, required: false },
    { schema: ROSTER_USER_SCHEMA, required: false },
  ],
};

export const GROUP_RESOURCE: ResourceTypeDef = {
  name: 'Group',
  endpoint: '/Groups',
  description: 'Group',
  schema: GROUP_SCHEMA,
  extensions: [],
};

const lowerIndex = new WeakMap<readonly AttributeDef[], Map<string, AttributeDef>>();

/** Case-insensitive attribute lookup (RFC 7643 §2.1: attribute names are case-insensitive). */
export function findAttribute(attributes: readonly AttributeDef[], name: string): AttributeDef | undefined {
  let index = lowerIndex.get(attributes);
  if (!index) {
    index = new Map(attributes.map((a) => [a.name.toLowerCase(), a]));
    lowerIndex.set(attributes, index);
  }
  return index.get(name.toLowerCase());
}

/** The extension of `resource` whose URN is `uri` (case-insensitively), if any. */
export function findExtension(resource: ResourceTypeDef, uri: string): SchemaDef | undefined {
  const lower = uri.toLowerCase();
  return resource.extensions.find((e) => e.schema.id.toLowerCase() === lower)?.schema;
}

/** True for the resource's core schema URN (case-insensitively). */
export function isCoreSchema(resource: ResourceTypeDef, uri: string): boolean {
  return uri.toLowerCase() === resource.schema.id.toLowerCase();
}
