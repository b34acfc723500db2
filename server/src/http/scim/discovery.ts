import {
  ALL_RESOURCE_TYPES,
  ALL_SCHEMAS,
  resourceTypeDocument,
  schemaDocument,
  serviceProviderConfig,
} from '../../scim/core/discovery.js';
import { scimNotFound } from '../../scim/protocol/error.js';
import { listResponse } from '../../scim/protocol/list-response.js';
import type { Route } from './call.js';
import { send } from './response.js';

/** `/ServiceProviderConfig`, `/Schemas` and `/ResourceTypes` (RFC 7644 §4): what the server supports. */
export const discoveryRoutes: Record<string, Route> = {
  'GET /ServiceProviderConfig': (call) => send(call, 200, serviceProviderConfig(call.baseUrl)),
  'GET /Schemas': (call) => {
    const docs = ALL_SCHEMAS.map((schema) => schemaDocument(schema, call.baseUrl));
    send(call, 200, listResponse(docs, docs.length, 1));
  },
  'GET /Schemas/:id': (call) => {
    const wanted = (call.segments[1] ?? '').toLowerCase();
    const schema = ALL_SCHEMAS.find((s) => s.id.toLowerCase() === wanted);
    if (!schema) throw scimNotFound(`Schema ${call.segments[1]} not found`);
    send(call, 200, schemaDocument(schema, call.baseUrl));
  },
  'GET /ResourceTypes': (call) => {
    const docs = ALL_RESOURCE_TYPES.map((type) => resourceTypeDocument(type, call.baseUrl));
    send(call, 200, listResponse(docs, docs.length, 1));
  },
  'GET /ResourceTypes/:id': (call) => {
    const wanted = (call.segments[1] ?? '').toLowerCase();
    const type = ALL_RESOURCE_TYPES.find((t) => t.name.toLowerCase() === wanted);
    if (!type) throw scimNotFound(`ResourceType ${call.segments[1]} not found`);
    send(call, 200, resourceTypeDocument(type, call.baseUrl));
  },
};
