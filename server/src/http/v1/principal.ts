import type { Response } from 'express';
import { notFound } from '../../errors.js';

/**
 * What the /v1 authentication knows of the caller. Today every accepted key is the
 * environment-wide management key, so `organizationId` is null. A key scoped to one organization
 * sets `res.locals.principal = { organizationId }` in the authentication middleware, and every
 * check written with {@link assertOrganizationAllowed} then holds it to that organization.
 */
export interface ApiPrincipal {
  /** The one organization the key may act on; null for an environment-wide key. */
  organizationId: string | null;
}

export function principalOf(res: Response): ApiPrincipal {
  const principal = res.locals.principal as ApiPrincipal | undefined;
  return principal ?? { organizationId: null };
}

/**
 * A scoped key acting on another organization gets 404, as if that organization did not exist
 * (an id it cannot use should not be confirmed either).
 */
export function assertOrganizationAllowed(principal: ApiPrincipal, organizationId: string): void {
  if (principal.organizationId !== null && principal.organizationId !== organizationId) {
    throw notFound('organization', organizationId);
  }
}
