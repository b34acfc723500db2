/** Message schema URNs and the media type (RFC 7644 §3.1, §8.7.2). */
export const SCIM_MEDIA_TYPE = 'application/scim+json';

export const MESSAGE_SCHEMAS = {
  error: 'urn:ietf:params:scim:api:messages:2.0:Error',
  listResponse: 'urn:ietf:params:scim:api:messages:2.0:ListResponse',
  patchOp: 'urn:ietf:params:scim:api:messages:2.0:PatchOp',
  searchRequest: 'urn:ietf:params:scim:api:messages:2.0:SearchRequest',
} as const;
