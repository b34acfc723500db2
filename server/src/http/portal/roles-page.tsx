import type { PortalSession } from '../../portal/links.js';
import type { ConnectionSummary } from '../../portal/queries.js';
import type { RolePreviewSummary } from '../../portal/role-preview-summary.js';
import { ConnectionHeader, Csrf, Layout, Notices } from './layout.js';
import { providerName } from './providers.js';

export interface RoleRowView {
  groupId: string;
  groupName: string;
  memberCount: number;
  /** What the mapping names the group by (its name, or its external id if a mapping uses that). */
  ref: string;
  role: string;
}

export function RolesPage(props: {
  session: PortalSession;
  summary: ConnectionSummary;
  rows: RoleRowView[];
  /** Mappings for groups that have not arrived (kept as they are). */
  otherMappings: { group: string; role: string }[];
  roles: { key: string; name: string }[];
  defaultRole: string;
  preview?: RolePreviewSummary | undefined;
  saved?: boolean;
  error?: string | undefined;
}) {
  const { connection } = props.summary;
  const roleName = (key: string) => props.roles.find((role) => role.key === key)?.name ?? key;
  return (
    <Layout title="Groups and roles" session={props.session}>
      <ConnectionHeader summary={props.summary} current="roles" />
      <Notices ok={props.saved ? 'Saved. Roles are updated.' : undefined} error={props.error} />
      {props.rows.length === 0 ? (
        <section class="card">
          <h2>No groups yet</h2>
          <p>
            Groups appear here once {providerName(connection.provider)} pushes them. Everyone gets the default
            role ({roleName(props.defaultRole)}) until then.
          </p>
        </section>
      ) : (
        <form method="post" action={`/portal/connections/${connection.id}/roles`} class="card">
          <Csrf session={props.session} />
          <h2>Give each group a role</h2>
          <p>
            People in no mapped group get the default role, {roleName(props.defaultRole)}. Someone in several
            mapped groups gets the role of the group highest in this list.
          </p>
          <table class="roles">
            <caption class="visually-hidden">Role of each group</caption>
            <thead>
              <tr>
                <th scope="col">Group</th>
                <th scope="col">Members</th>
                <th scope="col">Role</th>
              </tr>
            </thead>
            <tbody>
              {props.rows.map((row) => (
                <tr key={row.groupId}>
                  <th scope="row">
                    <label for={`role-${row.groupId}`}>{row.groupName}</label>
                  </th>
                  <td>
                    {row.memberCount} {row.memberCount === 1 ? 'member' : 'members'}
                  </td>
                  <td>
                    <input type="hidden" name="group" value={row.groupId} />
                    <select id={`role-${row.groupId}`} name={`role:${row.groupId}`}>
                      <option value="" selected={row.role === ''}>
                        No role from this group
                      </option>
                      {props.roles.map((role) => (
                        <option key={role.key} value={role.key} selected={row.role === role.key}>
                          {role.name}
                        </option>
                      ))}
                    </select>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {props.otherMappings.length > 0 ? (
            <p class="muted">
              Also kept: mappings for groups that have not arrived yet (
              {props.otherMappings.map((m) => `${m.group} → ${roleName(m.role)}`).join(', ')}).
            </p>
          ) : null}
          {props.preview ? <Preview preview={props.preview} roleName={roleName} /> : null}
          <div class="actions">
            <button type="submit" name="action" value="preview" class={props.preview ? 'secondary' : ''}>
              Preview changes
            </button>
            {props.preview ? (
              <button type="submit" name="action" value="save">
                Save
                {props.preview.total > 0
                  ? ` and change ${props.preview.total} role${props.preview.total === 1 ? '' : 's'}`
                  : ''}
              </button>
            ) : null}
          </div>
        </form>
      )}
    </Layout>
  );
}

function Preview(props: { preview: RolePreviewSummary; roleName: (key: string) => string }) {
  const { preview } = props;
  return (
    <section id="preview" class="preview" aria-labelledby="preview-title" tabIndex={-1}>
      <h3 id="preview-title">
        {preview.total === 0
          ? 'Nobody’s role would change.'
          : `${preview.total} ${preview.total === 1 ? 'person’s' : 'people’s'} role would change`}
      </h3>
      {preview.total > 0 ? (
        <>
          <p>
            {Object.entries(preview.to_roles)
              .map(([role, count]) => `${count} to ${props.roleName(role)}`)
              .join(', ')}
            .
          </p>
          <table>
            <caption class="visually-hidden">Whose role would change</caption>
            <thead>
              <tr>
                <th scope="col">Person</th>
                <th scope="col">Now</th>
                <th scope="col">After saving</th>
              </tr>
            </thead>
            <tbody>
              {preview.changes.map((change) => (
                <tr key={change.membership_id}>
                  <td>
                    {change.name ?? change.user_name} <span class="muted">{change.email ?? ''}</span>
                  </td>
                  <td>{props.roleName(change.from)}</td>
                  <td>{props.roleName(change.to)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {preview.total > preview.changes.length ? (
            <p class="muted">…and {preview.total - preview.changes.length} more.</p>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
