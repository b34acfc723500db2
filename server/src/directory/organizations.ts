import { randomBytes } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import { isForeignKeyViolation, isUniqueViolation } from '../db/errors.js';
import type { DB, JsonObject, LastChange, OrganizationRow } from '../db/schema.js';
import { ApiError, notFound } from '../errors.js';
import { appendEvents } from '../events/outbox.js';
import { newId } from '../ids.js';
import { sameJson } from '../lib/json.js';
import { decodeCursor, type Page, toPage } from '../pagination.js';
import { revokeSessionsWhere } from '../sessions/revocation.js';
import { appendMembershipEvents, lockRoleInputs } from './role-resolution.js';
import { toOrganization } from './serialize.js';

/**
 * Locks an organization row FOR SHARE in the caller's transaction (404 if there is none), so that a
 * row written below under it (a connection, a portal link) cannot race the organization's deletion,
 * which locks the row FOR UPDATE first.
 */
export async function lockOrganizationForShare(trx: Transaction<DB>, organizationId: string): Promise<void> {
  const organization = await trx
    .selectFrom('organizations')
    .select('id')
    .where('id', '=', organizationId)
    .forShare()
    .executeTakeFirst();
  if (!organization) throw notFound('organization', organizationId);
}

export interface OrganizationInput {
  name: string;
  slug?: string | undefined;
  default_role?: string | undefined;
  metadata?: JsonObject | undefined;
}

/** `"Acme Corp, Inc."` -> `"acme-corp-inc"`; empty when the name has no letters or digits. */
export function slugify(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48)
    .replace(/-+$/g, '');
}

const slugTaken = (slug: string) =>
  new ApiError(409, 'slug_taken', `The slug "${slug}" is taken by another organization.`, {
    details: [{ path: 'slug', code: 'slug_taken', message: 'is taken by another organization' }],
  });

const unknownRole = (key: string) =>
  new ApiError(400, 'validation_failed', `default_role: no role with key "${key}"`, {
    details: [{ path: 'default_role', code: 'unknown_role', message: `no role with key "${key}"` }],
  });

export async function createOrganization(ctx: Context, input: OrganizationInput): Promise<OrganizationRow> {
  const explicitSlug = input.slug !== undefined;
  const base = input.slug ?? (slugify(input.name) || 'org');
  // A derived slug that collides gets a short random suffix; an explicit one is the caller's to pick.
  for (let attempt = 0; ; attempt++) {
    const slug = attempt === 0 ? base : `${base}-${randomBytes(3).toString('hex')}`;
    try {
      return await ctx.transaction(async (trx) => {
        const now = ctx.now();
        const row = await trx
          .insertInto('organizations')
          .values({
            id: newId('organization', now.getTime()),
            name: input.name,
            slug,
            default_role: input.default_role ?? 'member',
            metadata: JSON.stringify(input.metadata ?? {}),
            created_at: now,
            updated_at: now,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        await appendEvents(trx, [
          { type: 'organization.created', organizationId: row.id, data: toOrganization(row) },
        ]);
        return row;
      });
    } catch (error) {
      if (isForeignKeyViolation(error)) throw unknownRole(input.default_role ?? 'member');
      if (!isUniqueViolation(error, 'organizations_slug_key')) throw error;
      if (explicitSlug || attempt >= 4) throw slugTaken(slug);
    }
  }
}

export async function getOrganization(ctx: Context, id: string): Promise<OrganizationRow> {
  const row = await ctx.db.selectFrom('organizations').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('organization', id);
  return row;
}

export async function listOrganizations(
  ctx: Context,
  options: { limit: number; after?: string | undefined; organizationId?: string | undefined },
): Promise<Page<ReturnType<typeof toOrganization>>> {
  const after = decodeCursor(options.after);
  let query = ctx.db
    .selectFrom('organizations')
    .selectAll()
    .orderBy('id')
    .limit(options.limit + 1);
  if (after !== undefined) query = query.where('id', '>', after);
  if (options.organizationId !== undefined) query = query.where('id', '=', options.organizationId);
  const rows = await query.execute();
  return toPage(rows, options.limit, (row) => row.id, toOrganization);
}

export async function updateOrganization(
  ctx: Context,
  id: string,
  patch: Partial<OrganizationInput>,
  change: LastChange,
): Promise<OrganizationRow> {
  try {
    return await ctx.transaction((trx) => applyOrganizationUpdate(ctx, trx, id, patch, change));
  } catch (error) {
    throw organizationUpdateError(error, patch);
  }
}

/** The API error for a database error of an organization update (the error itself otherwise). */
export function organizationUpdateError(error: unknown, patch: Partial<OrganizationInput>): unknown {
  if (isUniqueViolation(error, 'organizations_slug_key')) return slugTaken(patch.slug ?? '');
  if (isForeignKeyViolation(error)) return unknownRole(patch.default_role ?? '');
  return error;
}

/**
 * The body of an organization update, in the caller's transaction (PATCH and its preview). A new
 * default role is the role of every member whose role comes from the default (none of their IdP
 * groups is mapped, and it is not pinned), in the same transaction.
 */
export async function applyOrganizationUpdate(
  ctx: Context,
  trx: Transaction<DB>,
  id: string,
  patch: Partial<OrganizationInput>,
  change: LastChange,
): Promise<OrganizationRow> {
  if (patch.default_role !== undefined) {
    // Role resolution reads the default role: hold the role inputs of every connection still, as a
    // mapping change does, before any row lock (role-resolution.ts).
    const connections = await trx
      .selectFrom('connections')
      .select('id')
      .where('organization_id', '=', id)
      .orderBy('id')
      .execute();
    for (const connection of connections) await lockRoleInputs(trx, connection.id, 'exclusive');
  }
  const before = await lockOrganization(trx, id);
  const changes: Record<string, unknown> = {};
  if (patch.name !== undefined && patch.name !== before.name) changes.name = patch.name;
  if (patch.slug !== undefined && patch.slug !== before.slug) changes.slug = patch.slug;
  if (patch.default_role !== undefined && patch.default_role !== before.default_role) {
    changes.default_role = patch.default_role;
  }
  if (patch.metadata !== undefined && !sameJson(patch.metadata, before.metadata)) {
    changes.metadata = JSON.stringify(patch.metadata);
  }
  const changed = Object.keys(changes);
  if (changed.length === 0) return before;
  const now = ctx.now();
  const row = await trx
    .updateTable('organizations')
    .set({ ...changes, updated_at: now })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  await appendEvents(trx, [
    {
      type: 'organization.updated',
      organizationId: id,
      data: { ...toOrganization(row), changed_attributes: changed },
    },
  ]);
  if (changes.default_role !== undefined) {
    const moved = await trx
      .updateTable('memberships')
      .set({ role_key: row.default_role, updated_at: now, last_change: JSON.stringify(change) })
      .where('organization_id', '=', id)
      .where(sql<boolean>`role_source ->> 'kind' = 'default'`)
      .where('role_key', '<>', row.default_role)
      .returning('id')
      .execute();
    await appendMembershipEvents(
      trx,
      'membership.updated',
      moved.map((m) => m.id),
      ['role'],
    );
  }
  return row;
}

/**
 * Deletes the organization and everything under it (the foreign keys cascade), after revoking its
 * sessions so that each revocation is on the feed. Events are kept: they have no foreign key.
 */
export async function deleteOrganization(ctx: Context, id: string): Promise<void> {
  await ctx.transaction(async (trx) => {
    const row = await lockOrganization(trx, id);
    // Users before sessions: the lock order of session refresh (sessions/sessions.ts), which would
    // otherwise deadlock with the cascade below.
    await trx.selectFrom('users').select('id').where('organization_id', '=', id).forUpdate().execute();
    await revokeSessionsWhere(trx, ctx.now(), { organizationId: id }, 'organization_deleted');
    await trx.deleteFrom('organizations').where('id', '=', id).execute();
    await appendEvents(trx, [
      { type: 'organization.deleted', organizationId: id, data: toOrganization(row) },
    ]);
  });
  // Its connections went with it: their tokens must stop working now, not when the cache expires.
  ctx.scimAuthCache.clear();
}

async function lockOrganization(trx: Transaction<DB>, id: string): Promise<OrganizationRow> {
  const row = await trx
    .selectFrom('organizations')
    .selectAll()
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw notFound('organization', id);
  return row;
}
