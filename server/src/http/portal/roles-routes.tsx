import type { Response, Router } from 'express';
import { getRoleMappings, setRoleMappings } from '../../directory/role-mappings.js';
import { portalContext } from '../../portal/links.js';
import { type ConnectionSummary, listConnectionGroups } from '../../portal/queries.js';
import { type RolePreviewSummary, summarizeRolePreview } from '../../portal/role-preview-summary.js';
import { ownSummary, type PortalDeps, page, sessionOf } from './http.js';
import { type RoleRowView, RolesPage } from './roles-page.js';

/** Groups and roles: the mapping table, its preview, saving it. */
export function rolesRoutes(router: Router, deps: PortalDeps): void {
  const { ctx } = deps;
  /** The roles page's table: mapped groups in precedence order, then the others by name. */
  async function roleRows(summary: ConnectionSummary) {
    const id = summary.connection.id;
    const groups = await listConnectionGroups(ctx, id);
    const { mappings } = await getRoleMappings(ctx, id);
    const used = new Set<number>();
    const rows: (RoleRowView & { precedence: number })[] = groups.map((group) => {
      const index = mappings.findIndex(
        (m) => m.group.toLowerCase() === group.display_name.toLowerCase() || m.group === group.external_id,
      );
      if (index !== -1) used.add(index);
      const mapping = mappings[index];
      return {
        groupId: group.id,
        groupName: group.display_name,
        memberCount: group.member_count,
        ref: mapping?.group ?? group.display_name,
        role: mapping?.role ?? '',
        precedence: mapping?.precedence ?? Number.MAX_SAFE_INTEGER,
      };
    });
    rows.sort((a, b) => a.precedence - b.precedence);
    const otherMappings = mappings
      .filter((_m, i) => !used.has(i))
      .map((m) => ({ group: m.group, role: m.role }));
    return { rows, otherMappings };
  }

  async function renderRoles(
    res: Response,
    summary: ConnectionSummary,
    rows: RoleRowView[],
    otherMappings: { group: string; role: string }[],
    extra: {
      status?: number;
      preview?: RolePreviewSummary;
      saved?: boolean;
      error?: string;
    },
  ) {
    const roles = await ctx.db.selectFrom('roles').select(['key', 'name']).orderBy('key').execute();
    const organization = await ctx.db
      .selectFrom('organizations')
      .select('default_role')
      .where('id', '=', summary.connection.organization_id)
      .executeTakeFirstOrThrow();
    page(
      res,
      extra.status ?? 200,
      <RolesPage
        session={sessionOf(res)}
        summary={summary}
        rows={rows}
        otherMappings={otherMappings}
        roles={roles}
        defaultRole={organization.default_role}
        preview={extra.preview}
        saved={extra.saved ?? false}
        error={extra.error}
      />,
    );
  }

  router.get('/connections/:connection_id/roles', async (req, res) => {
    const summary = await ownSummary(ctx, req, res);
    const { rows, otherMappings } = await roleRows(summary);
    await renderRoles(res, summary, rows, otherMappings, { saved: req.query.saved === '1' });
  });

  router.post('/connections/:connection_id/roles', async (req, res) => {
    const session = sessionOf(res);
    const summary = await ownSummary(ctx, req, res);
    const { rows, otherMappings } = await roleRows(summary);
    // The submitted choice for each group on the page; groups not on the form keep their role.
    const body = req.body as Record<string, unknown>;
    const chosen = rows.map((row) => {
      const value = body[`role:${row.groupId}`];
      return { ...row, role: typeof value === 'string' ? value : row.role };
    });
    const mappings = [
      ...chosen.filter((row) => row.role !== '').map((row) => ({ group: row.ref, role: row.role })),
      ...otherMappings,
    ];
    const known = new Set((await ctx.db.selectFrom('roles').select('key').execute()).map((r) => r.key));
    if (mappings.some((m) => !known.has(m.role))) {
      await renderRoles(res, summary, chosen, otherMappings, {
        status: 400,
        error: 'Choose one of the listed roles.',
      });
      return;
    }
    const change = { at: ctx.now().toISOString(), request_id: req.id, via: 'portal' } as const;
    if (body.action === 'save') {
      await setRoleMappings(portalContext(ctx, session), summary.connection.id, mappings, change);
      res.redirect(303, `/portal/connections/${summary.connection.id}/roles?saved=1`);
      return;
    }
    const preview = await summarizeRolePreview(ctx, summary.connection.id, mappings, change);
    await renderRoles(res, summary, chosen, otherMappings, { preview });
  });
}
