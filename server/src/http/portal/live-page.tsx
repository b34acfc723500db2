import type { PortalSession } from '../../portal/links.js';
import type { ConnectionSummary, SyncLogLine } from '../../portal/queries.js';
import { explainFailure } from './explain.js';
import { ConnectionHeader, Layout, time } from './layout.js';
import { providerName } from './providers.js';

export interface LiveData {
  summary: ConnectionSummary;
  firstRequest: SyncLogLine | undefined;
  failures: SyncLogLine[];
  users: {
    id: string;
    user_name: string;
    display_name: string | null;
    email: string | null;
    active: boolean;
  }[];
  groups: { id: string; display_name: string; member_count: number }[];
}

export function LiveSection(props: { data: LiveData }) {
  const { summary, firstRequest, failures, users, groups } = props.data;
  const idp = providerName(summary.connection.provider);
  return (
    <section id="live" class="card" aria-live="polite" data-state={summary.state}>
      {summary.state === 'waiting' ? (
        <>
          <h2>
            <span class="spinner" aria-hidden="true" /> Waiting for {idp}'s first request…
          </h2>
          <p>
            This page updates by itself. Turn provisioning on in {idp} (or use its Test Connection button).
          </p>
        </>
      ) : (
        <>
          <h2>{idp} is connected</h2>
          <p>
            First request: <b>{time(summary.firstRequestAt)}</b>
            {firstRequest ? (
              <>
                {' '}
                (
                <code>
                  {firstRequest.method} {firstRequest.path}
                </code>{' '}
                → {firstRequest.status})
              </>
            ) : null}
            . Last request: <b>{time(summary.lastRequestAt)}</b>.
          </p>
          <dl class="stats">
            <div>
              <dt>Users</dt>
              <dd data-count="users">{summary.users}</dd>
            </div>
            <div>
              <dt>Groups</dt>
              <dd data-count="groups">{summary.groups}</dd>
            </div>
            <div>
              <dt>Failed requests (last hour)</dt>
              <dd>{summary.hourErrors}</dd>
            </div>
          </dl>
          {users.length > 0 ? (
            <>
              <h3>Latest users</h3>
              <ul class="plain">
                {users.map((user) => (
                  <li key={user.id}>
                    {user.display_name ?? user.user_name}{' '}
                    <span class="muted">{user.email ?? user.user_name}</span>
                  </li>
                ))}
              </ul>
            </>
          ) : null}
          {groups.length > 0 ? (
            <>
              <h3>Latest groups</h3>
              <ul class="plain">
                {groups.map((group) => (
                  <li key={group.id}>
                    {group.display_name} <span class="muted">{group.member_count} members</span>
                  </li>
                ))}
              </ul>
            </>
          ) : null}
          {failures.length > 0 ? (
            <>
              <h3>What went wrong</h3>
              <ul class="failures">
                {failures.map((line) => (
                  <li key={line.request_id}>
                    <b>{explainFailure(line, idp)}</b>{' '}
                    <span class="muted">
                      {time(line.created_at)} · {line.method} {line.path} → {line.status} · request id{' '}
                      <code>{line.request_id}</code>
                    </span>
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </>
      )}
    </section>
  );
}

export function LivePage(props: { session: PortalSession; data: LiveData }) {
  return (
    <Layout title="Live check" session={props.session} refresh>
      <ConnectionHeader summary={props.data.summary} current="live" />
      <LiveSection data={props.data} />
    </Layout>
  );
}
