import type { PagePromise } from '../pagination.js';
import {
  type ApiClient,
  type CallOptions,
  callInit,
  type ListParams,
  paged,
  type RequestOptions,
  type Schemas,
  unwrap,
  unwrapEmpty,
} from '../request.js';

export interface ListMembersParams extends ListParams {
  organizationId: string;
  status?: Schemas['MembershipStatus'];
  role?: string;
  /** A name or email prefix. */
  query?: string;
}

export interface MembershipParams {
  organizationId: string;
  membershipId: string;
}

export type AddMemberParams = { organizationId: string } & Schemas['MembershipCreate'];
export type UpdateMemberParams = MembershipParams & Schemas['MembershipUpdate'];

/** The members of an organization (methods of `roster.organizations`). */
export interface MemberMethods {
  /** Members with their role and permissions, filtered by status, role, or a name/email prefix. */
  listMembers(params: ListMembersParams, options?: CallOptions): PagePromise<Schemas['Membership']>;
  getMember(params: MembershipParams, options?: CallOptions): Promise<Schemas['Membership']>;
  /** Adds a member who does not come from an IdP (`source: "api"`). */
  addMember(params: AddMemberParams, options?: RequestOptions): Promise<Schemas['Membership']>;
  /** Pins a role (`role: 'admin'`), or unpins it (`role: null`) so IdP groups decide again. */
  updateMember(params: UpdateMemberParams, options?: CallOptions): Promise<Schemas['Membership']>;
  removeMember(params: MembershipParams, options?: CallOptions): Promise<void>;
  /** Why a member has their role: the mapped group, the default role, or a pinned role. */
  explainMember(
    params: { membershipId: string },
    options?: CallOptions,
  ): Promise<Schemas['MembershipExplanation']>;
}

export function memberMethods(client: ApiClient): MemberMethods {
  const path = ({ organizationId, membershipId }: MembershipParams) => ({
    path: { organization_id: organizationId, membership_id: membershipId },
  });
  return {
    listMembers: ({ organizationId, status, role, query, ...page }, options) =>
      paged(page, options, ({ limit, after }, init) =>
        client.GET('/v1/organizations/{organization_id}/memberships', {
          params: { path: { organization_id: organizationId }, query: { limit, after, status, role, query } },
          ...init,
        }),
      ),
    getMember: (params, options) =>
      unwrap(
        client.GET('/v1/organizations/{organization_id}/memberships/{membership_id}', {
          params: path(params),
          ...callInit(options),
        }),
      ),
    addMember: ({ organizationId, ...body }, options) =>
      unwrap(
        client.POST('/v1/organizations/{organization_id}/memberships', {
          params: { path: { organization_id: organizationId } },
          body,
          ...callInit(options),
        }),
      ),
    updateMember: ({ organizationId, membershipId, role }, options) =>
      unwrap(
        client.PATCH('/v1/organizations/{organization_id}/memberships/{membership_id}', {
          params: path({ organizationId, membershipId }),
          body: { role },
          ...callInit(options),
        }),
      ),
    removeMember: (params, options) =>
      unwrapEmpty(
        client.DELETE('/v1/organizations/{organization_id}/memberships/{membership_id}', {
          params: path(params),
          ...callInit(options),
        }),
      ),
    explainMember: ({ membershipId }, options) =>
      unwrap(
        client.GET('/v1/memberships/{membership_id}/explain', {
          params: { path: { membership_id: membershipId } },
          ...callInit(options),
        }),
      ),
  };
}
