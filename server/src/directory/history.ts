import { createHash } from 'node:crypto';
// The SDK's canonical JSON, so that the server's digest and a consumer's (snapshotDigest) are one rule.
import { canonicalJson } from '@roster/openapi/digest';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import type { DB, JsonObject } from '../db/schema.js';
import { ApiError, notFound } from '../errors.js';
import { encodeEventCursor } from '../events/feed.js';

/**
 * The directory as of any cursor of the events feed. Every change commits with its events, in
 * commit order, and every membership and user event carries the resource as it is after the
 * change; so an organization's members at feed position `c` are a starting point (the baseline,
 * the members as of `event_feed.baseline_through`) with the organization's events up to `c`
 * applied in order ({@link applyEvent}). The retention purge folds the events it drops into the
 * baseline with the same function, in the same transaction, so every retained cursor stays exact.
 */

export type SnapshotMember = Schemas['SnapshotMember'];

/** Members by membership id, and membership ids by user id (user events name the user). */
export class DirectoryState {
  readonly members = new Map<string, SnapshotMember>();
  readonly #byUser = new Map<string, string>();

  set(member: SnapshotMember): void {
    this.members.set(member.membership_id, member);
    this.#byUser.set(member.user_id, member.membership_id);
  }

  delete(membershipId: string): void {
    const member = this.members.get(membershipId);
    if (!member) return;
    this.members.delete(membershipId);
    if (this.#byUser.get(member.user_id) === membershipId) this.#byUser.delete(member.user_id);
  }

  memberOfUser(userId: string): SnapshotMember | undefined {
    const id = this.#byUser.get(userId);
    return id === undefined ? undefined : this.members.get(id);
  }

  /** Members in membership id order: the order of a snapshot and of its digest. */
  sorted(): SnapshotMember[] {
    return [...this.members.values()].sort((a, b) => (a.membership_id < b.membership_id ? -1 : 1));
  }
}

/** The user's fields a member shows, from a membership's `user` or a user event's resource. */
const userFields = (user: Schemas['MembershipUser']) => ({
  user_name: user.user_name,
  email: user.email,
  name: user.name,
  active: user.active,
});

function memberFromMembership(data: JsonObject): SnapshotMember {
  const membership = data as unknown as Schemas['Membership'];
  return {
    membership_id: membership.id,
    user_id: membership.user.id,
    ...userFields(membership.user),
    role: membership.role,
    status: membership.status,
    source: membership.source,
    metadata: membership.metadata,
  };
}

/**
 * Applies one event to the state. Membership events carry the whole membership; user events carry
 * the user, whose fields a member shows (a user's attribute change has no membership event).
 * @returns the membership id the event changed, if any.
 */
export function applyEvent(state: DirectoryState, type: string, data: JsonObject): string | undefined {
  switch (type) {
    case 'membership.created':
    case 'membership.updated': {
      const member = memberFromMembership(data);
      state.set(member);
      return member.membership_id;
    }
    case 'membership.deleted': {
      const id = String(data.id);
      if (!state.members.has(id)) return undefined;
      state.delete(id);
      return id;
    }
    case 'user.updated':
    case 'user.deactivated':
    case 'user.reactivated': {
      const user = data as unknown as Schemas['User'];
      const member = state.memberOfUser(user.id);
      if (!member) return undefined;
      state.set({ ...member, ...userFields(user) });
      return member.membership_id;
    }
    case 'organization.deleted': {
      for (const id of [...state.members.keys()]) state.delete(id);
      return undefined;
    }
    default:
      return undefined;
  }
}

export { canonicalJson };

/**
 * `sha256:` + hex SHA-256 of every member's canonical JSON followed by a newline, in membership id
 * order (README: "Checking a mirror"). The empty directory hashes the empty string.
 */
export function snapshotDigest(members: readonly SnapshotMember[]): string {
  const hash = createHash('sha256');
  for (const member of members) hash.update(`${canonicalJson(member)}\n`);
  return `sha256:${hash.digest('hex')}`;
}

interface FeedBounds {
  head: number;
  baseline_through: number;
}

const cursorError = (path: string, status: 400 | 410, detail: string) =>
  new ApiError(status, status === 410 ? 'cursor_expired' : 'invalid_cursor', `${path}: ${detail}`, {
    details: [{ path, code: status === 410 ? 'cursor_expired' : 'invalid_cursor', message: detail }],
  });

function checkPosition(position: number, bounds: FeedBounds, path: string): void {
  if (position < bounds.baseline_through) {
    throw cursorError(
      path,
      410,
      'this cursor is past the event retention; snapshots reach back to the oldest retained event',
    );
  }
  if (position > bounds.head)
    throw cursorError(path, 400, 'ahead of this feed (a cursor of another Roster?)');
}

async function loadBaseline(trx: Transaction<DB>, organizationId: string): Promise<DirectoryState> {
  const state = new DirectoryState();
  const rows = await trx
    .selectFrom('directory_baseline')
    .select('member')
    .where('organization_id', '=', organizationId)
    .execute();
  for (const row of rows) state.set(row.member as unknown as SnapshotMember);
  return state;
}

interface FeedEvent {
  position: number;
  id: string;
  type: string;
  data: JsonObject;
}

/** The organization's directory events in (after, through], in feed order, in pages. */
async function* organizationEvents(
  trx: Transaction<DB>,
  organizationId: string,
  after: number,
  through: number,
): AsyncGenerator<FeedEvent> {
  let from = after;
  for (;;) {
    const rows = await trx
      .selectFrom('feed as f')
      .innerJoin('events as e', 'e.seq', 'f.seq')
      .select(['f.position', 'e.id', 'e.type', 'e.data'])
      .where('f.organization_id', '=', organizationId)
      .where('f.position', '>', from)
      .where('f.position', '<=', through)
      .where(sql<boolean>`f.type in ('membership.created', 'membership.updated', 'membership.deleted',
        'user.updated', 'user.deactivated', 'user.reactivated', 'organization.deleted')`)
      .orderBy('f.position')
      .limit(5000)
      .execute();
    for (const row of rows) yield { ...row, position: Number(row.position) };
    if (rows.length < 5000) return;
    from = Number(rows[rows.length - 1]!.position);
  }
}

/** Runs `fn` in a read-only repeatable-read transaction: baseline, events and head agree. */
async function consistentRead<T>(
  db: Kysely<DB>,
  fn: (trx: Transaction<DB>, bounds: FeedBounds) => Promise<T>,
) {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      const bounds = await trx
        .selectFrom('event_feed')
        .select(['head', 'baseline_through'])
        .where('id', '=', 1)
        .executeTakeFirstOrThrow();
      return fn(trx, { head: Number(bounds.head), baseline_through: Number(bounds.baseline_through) });
    });
}

async function assertOrganizationKnown(trx: Transaction<DB>, organizationId: string): Promise<void> {
  const found = await trx
    .selectFrom('organizations')
    .select('id')
    .where('id', '=', organizationId)
    .executeTakeFirst();
  if (!found) throw notFound('organization', organizationId);
}

async function stateAt(
  trx: Transaction<DB>,
  organizationId: string,
  bounds: FeedBounds,
  position: number,
): Promise<DirectoryState> {
  const state = await loadBaseline(trx, organizationId);
  for await (const event of organizationEvents(trx, organizationId, bounds.baseline_through, position)) {
    applyEvent(state, event.type, event.data);
  }
  return state;
}

export async function directorySnapshot(
  ctx: Context,
  organizationId: string,
  asOf: number | undefined,
  withMembers: boolean,
): Promise<Schemas['DirectorySnapshot']> {
  return consistentRead(ctx.db, async (trx, bounds) => {
    await assertOrganizationKnown(trx, organizationId);
    const position = asOf ?? bounds.head;
    checkPosition(position, bounds, 'as_of');
    const members = (await stateAt(trx, organizationId, bounds, position)).sorted();
    return {
      object: 'directory_snapshot',
      organization_id: organizationId,
      as_of: encodeEventCursor(position),
      count: members.length,
      digest: snapshotDigest(members),
      ...(withMembers ? { members } : {}),
    };
  });
}

const FIELDS = ['user_name', 'email', 'name', 'active', 'role', 'status', 'source', 'metadata'] as const;

export async function directoryDiff(
  ctx: Context,
  organizationId: string,
  from: number,
  until: number | undefined,
): Promise<Schemas['DirectoryDiff']> {
  return consistentRead(ctx.db, async (trx, bounds) => {
    await assertOrganizationKnown(trx, organizationId);
    const to = until ?? bounds.head;
    checkPosition(from, bounds, 'from');
    checkPosition(to, bounds, 'to');
    if (to < from) {
      throw new ApiError(400, 'validation_failed', 'to: must not be before from', {
        details: [{ path: 'to', code: 'invalid_range', message: 'must not be before from' }],
      });
    }
    const state = await stateAt(trx, organizationId, bounds, from);
    const before = new Map(state.members);
    const causes = new Map<string, FeedEvent>();
    for await (const event of organizationEvents(trx, organizationId, from, to)) {
      if (event.type === 'organization.deleted') {
        for (const id of state.members.keys()) causes.set(id, event);
      }
      const touched = applyEvent(state, event.type, event.data);
      if (touched !== undefined) causes.set(touched, event);
    }
    const changes: Schemas['DirectoryChange'][] = [];
    for (const [id, cause] of [...causes].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const was = before.get(id) ?? null;
      const now = state.members.get(id) ?? null;
      if (was === null && now === null) continue;
      const changed = was && now ? FIELDS.filter((f) => canonicalJson(was[f]) !== canonicalJson(now[f])) : [];
      if (was && now && changed.length === 0) continue;
      const change: Schemas['DirectoryChange']['change'] =
        was === null
          ? 'added'
          : now === null
            ? 'removed'
            : changed.includes('status') && now.status === 'inactive'
              ? 'deactivated'
              : changed.includes('status') && now.status === 'active'
                ? 'reactivated'
                : 'updated';
      changes.push({
        membership_id: id,
        change,
        changed_fields: [...changed],
        before: was,
        after: now,
        event: {
          id: cause.id,
          type: cause.type as Schemas['EventType'],
          cursor: encodeEventCursor(cause.position),
        },
      });
    }
    return {
      object: 'directory_diff',
      organization_id: organizationId,
      from: encodeEventCursor(from),
      to: encodeEventCursor(to),
      changes,
    };
  });
}

/**
 * Folds the events at positions (baseline_through, through] into directory_baseline, in the purge's
 * transaction (before it deletes them), and moves baseline_through.
 */
export async function foldIntoBaseline(trx: Transaction<DB>, through: number): Promise<void> {
  const bounds = await trx
    .selectFrom('event_feed')
    .select('baseline_through')
    .where('id', '=', 1)
    .forUpdate()
    .executeTakeFirstOrThrow();
  const after = Number(bounds.baseline_through);
  if (through <= after) return;
  const organizations = await trx
    .selectFrom('feed')
    .select('organization_id')
    .distinct()
    .where('position', '>', after)
    .where('position', '<=', through)
    .where('organization_id', 'is not', null)
    .execute();
  for (const { organization_id: organizationId } of organizations) {
    const state = await loadBaseline(trx, organizationId!);
    const touched = new Set<string>();
    let cleared = false;
    for await (const event of organizationEvents(trx, organizationId!, after, through)) {
      if (event.type === 'organization.deleted') cleared = true;
      const id = applyEvent(state, event.type, event.data);
      if (id !== undefined) touched.add(id);
    }
    if (cleared) {
      await trx.deleteFrom('directory_baseline').where('organization_id', '=', organizationId!).execute();
    }
    const ids = cleared ? [...state.members.keys()] : [...touched];
    const removed = ids.filter((id) => !state.members.has(id));
    const kept = ids.filter((id) => state.members.has(id));
    for (let i = 0; i < removed.length; i += 1000) {
      await sql`delete from directory_baseline where organization_id = ${organizationId}
        and membership_id = any(${removed.slice(i, i + 1000)}::text[])`.execute(trx);
    }
    for (let i = 0; i < kept.length; i += 1000) {
      const batch = kept.slice(i, i + 1000);
      await sql`insert into directory_baseline (organization_id, membership_id, member)
        select ${organizationId}, v.id, v.member::jsonb
        from unnest(${batch}::text[], ${batch.map((id) => JSON.stringify(state.members.get(id)))}::text[]) as v(id, member)
        on conflict (organization_id, membership_id) do update set member = excluded.member`.execute(trx);
    }
  }
  await trx.updateTable('event_feed').set({ baseline_through: through }).where('id', '=', 1).execute();
}
