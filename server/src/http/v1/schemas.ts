import { z } from 'zod';
import { providerValues, type Schemas } from '../../contract.js';

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
