import { MESSAGE_SCHEMAS } from './messages.js';

/** ListResponse (RFC 7644 §3.4.2). `Resources` is always an array: Entra and Okta reject null. */
export interface ListResponse<T> {
  schemas: [typeof MESSAGE_SCHEMAS.listResponse];
  totalResults: number;
  startIndex: number;
  itemsPerPage: number;
  Resources: T[];
}

export function listResponse<T>(resources: T[], totalResults: number, startIndex: number): ListResponse<T> {
  return {
    schemas: [MESSAGE_SCHEMAS.listResponse],
    totalResults,
    startIndex,
    itemsPerPage: resources.length,
    Resources: resources,
  };
}
