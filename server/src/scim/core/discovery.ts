import {
  type AttributeDef,
  COMMON_ATTRIBUTES,
  ENTERPRISE_USER_SCHEMA,
  GROUP_RESOURCE,
  GROUP_SCHEMA,
  type ResourceTypeDef,
  ROSTER_USER_SCHEMA,
  SCHEMA_URNS,
  type SchemaDef,
  USER_RESOURCE,
  USER_SCHEMA,
} from './schemas.js';

/** Discovery documents (RFC 7644 §4; RFC 7643 §5, §6, §7), rendered for one connection's base URL. */

export const MAX_RESULTS = 1000;

export function serviceProviderConfig(baseUrl: string) {
  return {
    schemas: [SCHEMA_URNS.serviceProviderConfig],
    documentationUri: 'https://github.com/roster-dev/roster#connecting-an-identity-provider',
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: MAX_RESULTS },
    changePassword: { supported: false },
    sort: { supported: true },
    etag: { supported: true },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'Bearer token',
        description: 'The connection\'s SCIM token, sent as "Authorization: Bearer <token>".',
        primary: true,
      },
    ],
    meta: {
      resourceType: 'ServiceProviderConfig',
      location: `${baseUrl}/ServiceProviderConfig`,
    },
  };
}

function renderAttribute(a: AttributeDef): Record<string, unknown> {
  return {
    name: a.name,
    type: a.type,
    multiValued: a.multiValued,
    description: a.description,
    required: a.required,
    ...(a.type === 'string' || a.type === 'reference' ? { caseExact: a.caseExact } : {}),
    ...(a.canonicalValues ? { canonicalValues: a.canonicalValues } : {}),
    ...(a.referenceTypes ? { referenceTypes: a.referenceTypes } : {}),
    mutability: a.mutability,
    returned: a.returned,
    ...(a.type === 'complex' ? {} : { uniqueness: a.uniqueness }),
    ...(a.subAttributes ? { subAttributes: a.subAttributes.map(renderAttribute) } : {}),
  };
}

export const ALL_SCHEMAS: readonly SchemaDef[] = [
  USER_SCHEMA,
  GROUP_SCHEMA,
  ENTERPRISE_USER_SCHEMA,
  ROSTER_USER_SCHEMA,
];

export function schemaDocument(schema: SchemaDef, baseUrl: string) {
  const core = schema === USER_SCHEMA || schema === GROUP_SCHEMA;
  return {
    schemas: [SCHEMA_URNS.schema],
    id: schema.id,
    name: schema.name,
    description: schema.description,
    attributes: [
      ...(core ? COMMON_ATTRIBUTES.filter((a) => a.name !== 'meta') : []),
      ...schema.attributes,
    ].map(renderAttribute),
    meta: { resourceType: 'Schema', location: `${baseUrl}/Schemas/${schema.id}` },
  };
}

export const ALL_RESOURCE_TYPES: readonly ResourceTypeDef[] = [USER_RESOURCE, GROUP_RESOURCE];

export function resourceTypeDocument(resource: ResourceTypeDef, baseUrl: string) {
  return {
    schemas: [SCHEMA_URNS.resourceType],
    id: resource.name,
    name: resource.name,
    endpoint: resource.endpoint,
    description: resource.description,
    schema: resource.schema.id,
    ...(resource.extensions.length
      ? { schemaExtensions: resource.extensions.map((e) => ({ schema: e.schema.id, required: e.required })) }
      : {}),
    meta: { resourceType: 'ResourceType', location: `${baseUrl}/ResourceTypes/${resource.name}` },
  };
}
