import { z } from 'zod';
import { eventTypeValues, providerValues, type Schemas } from '../../contract.js';

/**
 * zod schemas for /v1 request bodies and query strings. Each body schema is checked against the
 * generated contract type at compile time (see the `Same<>` assertions at the bottom), so the
 * validation and openapi/roster.yaml cannot drift apart.
 */

const metadata = z
  .record(z.string(), z.unknown())
  .refine((value) => JSON.stringify(value).length <= 16_384, 'must be at most 16 KiB of JSON');

const slug = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'must be lower-case letters, digits and single hyphens');

const roleKey = z.string().min(1).max(64);

export const OrganizationCreate = z.strictObject({
  name: z.string().trim().min(1).max(200),
  slug: slug.optional(),
  default_role: roleKey.optional(),
  metadata: metadata.optional(),
});

export const OrganizationUpdate = z.strictObject({
  name: z.string().trim().min(1).max(200).optional(),
  slug: slug.optional(),
  default_role: roleKey.optional(),
  metadata: metadata.optional(),
});

export const ConnectionCreate = z.strictObject({
  name: z.string().trim().min(1).max(200),
  provider: z.enum(providerValues as [Schemas['Provider'], ...Schemas['Provider'][]]),
});

export const ScimTokenRotate = z.strictObject({
  previous_token_grace_seconds: z.number().int().min(0).max(2_592_000).optional(),
});

export const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: z.string().max(200).optional(),
});

export const MembershipListQuery = ListQuery.extend({
  status: z.enum(['active', 'inactive']).optional(),
  role: z.string().max(64).optional(),
  query: z.string().min(1).max(200).optional(),
});

const queryBoolean = z.enum(['true', 'false']).transform((value) => value === 'true');

export const UserListQuery = ListQuery.extend({
  organization_id: z.string().max(64).optional(),
  connection_id: z.string().max(64).optional(),
  email: z.string().max(320).optional(),
  user_name: z.string().max(320).optional(),
  active: queryBoolean.optional(),
});

export const GroupListQuery = ListQuery.extend({
  organization_id: z.string().max(64).optional(),
  connection_id: z.string().max(64).optional(),
});

export const EventsQuery = z.object({
  after: z.string().max(64).optional(),
  since: z.iso.datetime({ offset: true, error: 'must be an RFC 3339 timestamp' }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  types: z
    .string()
    .max(1000)
    .transform((value, ctx) => {
      const types = value
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean);
      const unknown = types.find((t) => !(eventTypeValues as readonly string[]).includes(t));
      if (unknown) {
        ctx.addIssue({ code: 'custom', message: `unknown event type "${unknown}"` });
        return z.NEVER;
      }
      return types;
    })
    .optional(),
  organization_id: z.string().max(64).optional(),
  wait: z.coerce.number().int().min(0).max(30).default(0),
});

const eventType = z.enum(eventTypeValues as [Schemas['EventType'], ...Schemas['EventType'][]]);
const webhookUrl = z.url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' }).max(2000);

export const WebhookEndpointCreate = z.strictObject({
  url: webhookUrl,
  description: z.string().max(500).optional(),
  types: z.array(eventType).max(50).optional(),
  organization_id: z
    .string()
    .regex(/^org_[0-9a-z]{26}$/, 'must be an organization id')
    .optional(),
  enabled: z.boolean().optional(),
});

export const WebhookEndpointUpdate = z.strictObject({
  url: webhookUrl.optional(),
  description: z.string().max(500).nullable().optional(),
  types: z.array(eventType).max(50).optional(),
  enabled: z.boolean().optional(),
});

export const SyncHealthQuery = z.object({
  failures: z.coerce.number().int().min(0).max(100).default(20),
});

const email = z.email({ error: 'must be an email address' }).max(320);
const name = z.string().trim().min(1).max(200);

export const MembershipCreate = z.strictObject({
  email,
  name: name.optional(),
  given_name: name.optional(),
  family_name: name.optional(),
  role: roleKey.optional(),
  metadata: metadata.optional(),
});

export const MembershipUpdate = z.strictObject({
  role: roleKey.nullable(),
});

const roleKeyPattern = z
  .string()
  .min(1)
  .max(64)
  .regex(
    /^[a-z0-9][a-z0-9_:.-]*$/,
    'must start with a lower-case letter or digit, then letters, digits, _ : . -',
  );
const permission = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_.:*-]+$/, 'must be letters, digits and _ . : * -');
const permissions = z
  .array(permission)
  .max(500)
  .refine((list) => new Set(list).size === list.length, 'must not repeat a permission');

export const RoleCreate = z.strictObject({
  key: roleKeyPattern,
  name,
  description: z.string().max(1000).optional(),
  permissions: permissions.optional(),
});

export const RoleUpdate = z.strictObject({
  name: name.optional(),
  description: z.string().max(1000).nullable().optional(),
  permissions: permissions.optional(),
});

export const DeprovisionGuardUpdate = z.strictObject({
  enabled: z.boolean(),
  max_in_window: z.number().int().min(1).max(1_000_000).nullable().optional(),
  max_percent: z.number().gt(0).max(100).nullable().optional(),
  window: z.string().max(16).optional(),
});

export const ConnectionUpdate = z
  .strictObject({ name: name.optional(), deprovision_guard: DeprovisionGuardUpdate.optional() })
  .refine((value) => Object.keys(value).length > 0, 'give name or deprovision_guard');

export const DeprovisionGuardRelease = z.strictObject({ window: z.string().max(16).optional() });

export const SnapshotQuery = z.object({
  as_of: z.string().max(64).optional(),
  members: z
    .enum(['true', 'false'])
    .default('true')
    .transform((value) => value === 'true'),
});

export const DiffQuery = z.object({
  from: z.string().max(64),
  to: z.string().max(64).optional(),
});

export const RoleMappingsUpdate = z.strictObject({
  mappings: z.array(z.strictObject({ group: z.string().min(1).max(500), role: roleKeyPattern })).max(500),
});

export const AttributeMappingsUpdate = z.strictObject({
  mappings: z
    .array(
      z.strictObject({
        attribute: z
          .string()
          .min(1)
          .max(300)
          .regex(/^(urn:[^\s]+:)?[A-Za-z$][\w$-]*(\.[A-Za-z$][\w$-]*)?$/, 'must be a SCIM attribute path'),
        key: z
          .string()
          .min(1)
          .max(100)
          .regex(/^[A-Za-z0-9_.-]+$/, 'must be letters, digits and _ . -'),
      }),
    )
    .max(100),
});

const userId = z.string().regex(/^user_[0-9a-z]{26}$/, 'must be a user id');
const organizationId = z.string().regex(/^org_[0-9a-z]{26}$/, 'must be an organization id');

export const SessionCreate = z.strictObject({ user_id: userId, organization_id: organizationId });

export const SessionRefresh = z.strictObject({ refresh_token: z.string().min(1).max(200) });

export const SessionListQuery = ListQuery.extend({
  status: z.enum(['active', 'revoked', 'expired']).optional(),
});

export const ApiKeyCreate = z.strictObject({
  name: z.string().trim().min(1).max(200),
  organization_id: z
    .string()
    .regex(/^org_[0-9a-z]{26}$/, 'must be an organization id')
    .optional(),
  scopes: z
    .array(z.enum(['read', 'write', 'events:read', 'sessions:write', 'api_keys:write']))
    .min(1)
    .max(10),
});

export const SigningKeyRotate = z.strictObject({
  alg: z.enum(['ES256', 'EdDSA']).optional(),
  revoke_previous: z.boolean().optional(),
});

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Where the Admin Portal's "Back to the app" link goes: https, or http on a loopback host (development). */
const returnUrl = z
  .string()
  .max(2048)
  .refine((value) => {
    if (!URL.canParse(value)) return false;
    const url = new URL(value);
    return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
  }, 'must be an https:// URL (http:// only on localhost)');

export const PortalLinkCreate = z.strictObject({
  intent: z.enum(['directory_sync']),
  return_url: returnUrl.optional(),
});

// Compile-time contract checks: each line fails to compile when the schema and the document differ.
type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];
type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Same keys, same required keys, and each assignable to the other. */
type Same<A, B> =
  Mutual<A, B> extends true
    ? Mutual<keyof A, keyof B> extends true
      ? Mutual<RequiredKeys<A>, RequiredKeys<B>>
      : false
    : false;
const contract = <_T extends true>() => {};
contract<Same<z.input<typeof OrganizationCreate>, Schemas['OrganizationCreate']>>();
contract<Same<z.input<typeof OrganizationUpdate>, Schemas['OrganizationUpdate']>>();
contract<Same<z.input<typeof ConnectionCreate>, Schemas['ConnectionCreate']>>();
contract<Same<z.input<typeof ScimTokenRotate>, Schemas['ScimTokenRotate']>>();
contract<Same<z.input<typeof MembershipCreate>, Schemas['MembershipCreate']>>();
contract<Same<z.input<typeof MembershipUpdate>, Schemas['MembershipUpdate']>>();
contract<Same<z.input<typeof RoleCreate>, Schemas['RoleCreate']>>();
contract<Same<z.input<typeof RoleUpdate>, Schemas['RoleUpdate']>>();
contract<Same<z.input<typeof ConnectionUpdate>, Schemas['ConnectionUpdate']>>();
contract<Same<z.input<typeof DeprovisionGuardUpdate>, Schemas['DeprovisionGuardUpdate']>>();
contract<Same<z.input<typeof DeprovisionGuardRelease>, Schemas['DeprovisionGuardRelease']>>();
contract<Same<z.input<typeof RoleMappingsUpdate>, Schemas['RoleMappingsUpdate']>>();
contract<Same<z.input<typeof AttributeMappingsUpdate>, Schemas['AttributeMappingsUpdate']>>();
contract<Same<z.input<typeof WebhookEndpointCreate>, Schemas['WebhookEndpointCreate']>>();
contract<Same<z.input<typeof WebhookEndpointUpdate>, Schemas['WebhookEndpointUpdate']>>();
contract<Same<z.input<typeof SessionCreate>, Schemas['SessionCreate']>>();
contract<Same<z.input<typeof SessionRefresh>, Schemas['SessionRefresh']>>();
contract<Same<z.input<typeof SigningKeyRotate>, Schemas['SigningKeyRotate']>>();
contract<Same<z.input<typeof ApiKeyCreate>, Schemas['ApiKeyCreate']>>();
contract<Same<z.input<typeof PortalLinkCreate>, Schemas['PortalLinkCreate']>>();
