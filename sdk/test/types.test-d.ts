import { describe, expectTypeOf, it } from 'vitest';
import {
  type CallOptions,
  createRoster,
  type Membership,
  type Organization,
  type PagePromise,
  type RequestOptions,
  type Roster,
  type SessionTokens,
} from '../src/index.js';

const roster = createRoster({ baseUrl: 'http://127.0.0.1:3000', secretKey: 'rst_sk_x' });

describe('SDK types follow the contract', () => {
  it('returns contract types', () => {
    expectTypeOf(
      roster.organizations.get({ organizationId: 'org_1' }),
    ).resolves.toEqualTypeOf<Organization>();
    expectTypeOf(roster.organizations.listMembers({ organizationId: 'org_1' })).toEqualTypeOf<
      PagePromise<Membership>
    >();
    expectTypeOf<Membership['status']>().toEqualTypeOf<'active' | 'inactive'>();
    expectTypeOf<Membership['user']['email']>().toEqualTypeOf<string | null>();
  });

  it('rejects wrong parameters at compile time', () => {
    // @ts-expect-error organizationId is required
    roster.organizations.listMembers({});
    // @ts-expect-error status is 'active' | 'inactive'
    roster.organizations.listMembers({ organizationId: 'org_1', status: 'deleted' });
    // @ts-expect-error provider must be one of the contract's providers
    roster.connections.create({ organizationId: 'org_1', name: 'x', provider: 'ldap' });
    // @ts-expect-error name is required to create an organization
    roster.organizations.create({ slug: 'acme' });
    // @ts-expect-error unknown body fields do not compile
    roster.roles.create({ key: 'billing', name: 'Billing', color: 'red' });
    // @ts-expect-error role mappings need a role
    roster.connections.setRoleMappings({ connectionId: 'conn_1', mappings: [{ group: 'Admins' }] });
    // @ts-expect-error a session needs its organization
    roster.sessions.create({ userId: 'user_1' });
    // @ts-expect-error GETs take no idempotency key
    roster.users.get({ userId: 'user_1' }, { idempotencyKey: 'k' });
  });

  it('takes camelCase everywhere, the old snake_case session forms still compile, options on every method', () => {
    expectTypeOf(
      roster.sessions.create({ userId: 'user_1', organizationId: 'org_1' }),
    ).resolves.toEqualTypeOf<SessionTokens>();
    expectTypeOf(
      roster.sessions.create({ user_id: 'user_1', organization_id: 'org_1' }),
    ).resolves.toEqualTypeOf<SessionTokens>();
    expectTypeOf(roster.sessions.refresh({ refreshToken: 'r' })).resolves.toEqualTypeOf<SessionTokens>();
    expectTypeOf(roster.users.get).parameter(1).toEqualTypeOf<CallOptions | undefined>();
    expectTypeOf(roster.roles.create).parameter(1).toEqualTypeOf<RequestOptions | undefined>();
    expectTypeOf(roster).toEqualTypeOf<Roster>();
  });
});
