import { type ApiClient, callInit, type RequestOptions, type Schemas, unwrap } from '../request.js';

export type CreatePortalLinkParams = { organizationId: string } & Schemas['PortalLinkCreate'];

/** Admin Portal links (a method of `roster.organizations`). */
export interface PortalLinkMethods {
  /**
   * A one-time link to the Admin Portal for this organization's IT admin (connect their IdP, map
   * groups to roles, watch the sync). Redirect the admin to `url` at once: it works once and
   * expires 5 minutes after creation.
   */
  createPortalLink(params: CreatePortalLinkParams, options?: RequestOptions): Promise<Schemas['PortalLink']>;
}

export function portalLinkMethods(client: ApiClient): PortalLinkMethods {
  return {
    createPortalLink: ({ organizationId, ...body }, options) =>
      unwrap(
        client.POST('/v1/organizations/{organization_id}/portal_links', {
          params: { path: { organization_id: organizationId } },
          body,
          ...callInit(options),
        }),
      ),
  };
}
