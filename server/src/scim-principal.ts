import type { AttributeMapping } from './db/schema.js';

/** A SCIM token row as the request path needs it: who calls, for which connection. */
export interface ScimPrincipal {
  connectionId: string;
  organizationId: string;
  provider: string;
  /** Which SCIM attributes land in membership.metadata (see directory/user-attributes.ts). */
  attributeMappings: AttributeMapping[];
}

/**
 * One cached SCIM token check (directory/scim-auth.ts): the principal, or undefined for a refused
 * token, and when the token expires, which is still checked against the injected clock on a hit.
 */
export interface ScimAuthCheck {
  principal: ScimPrincipal | undefined;
  tokenExpiresAt: number | null;
}
