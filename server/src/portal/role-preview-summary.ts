import type { Context } from '../context.js';
import type { LastChange } from '../db/schema.js';
import { previewRoleMappings } from '../directory/previews.js';

export interface PersonRoleChange {
  membership_id: string;
  user_id: string;
  name: string | null;
  user_name: string;
  email: string | null;
  from: string;
  to: string;
}

/** The Admin Portal's view of a role-mapping preview: names, counts per new role, a first page. */
export interface RolePreviewSummary {
  /** Members whose role would change, at most `limit` of them (ordered by user name). */
  changes: PersonRoleChange[];
  /** How many members' roles would change in all. */
  total: number;
  /** Members per new role among those that change, e.g. `{ admin: 3 }`. */
  to_roles: Record<string, number>;
}

/**
 * Whose role would change if the connection's role mappings became `mappings`, for the portal's
 * mapping page. The computation is the management API's preview ({@link previewRoleMappings}: the
 * update's own transaction, rolled back), so the portal, the API and the saved result cannot
 * disagree; this only summarizes its answer for a person.
 */
export async function summarizeRolePreview(
  ctx: Context,
  connectionId: string,
  mappings: readonly { group: string; role: string }[],
  change: LastChange,
  limit = 100,
): Promise<RolePreviewSummary> {
  const preview = await previewRoleMappings(ctx, connectionId, mappings, change);
  const changes: PersonRoleChange[] = [];
  for (const member of preview.changes) {
    if (!member.role) continue;
    changes.push({
      membership_id: member.membership_id,
      user_id: member.user.id,
      name: member.user.name,
      user_name: member.user.user_name,
      email: member.user.email,
      from: member.role.from,
      to: member.role.to,
    });
  }
  changes.sort((a, b) => a.user_name.localeCompare(b.user_name));
  const toRoles: Record<string, number> = {};
  for (const c of changes) toRoles[c.to] = (toRoles[c.to] ?? 0) + 1;
  return { changes: changes.slice(0, limit), total: changes.length, to_roles: toRoles };
}
