import type { ComponentChildren } from 'preact';
import type { RoleMappingsPreview } from '../../directory/role-mapping-preview.js';
import type { PortalSession } from '../../portal/links.js';
import type { ConnectionSummary, SyncLogLine } from '../../portal/queries.js';
import { explainFailure } from './explain.js';
import { PROVIDERS, type ProviderGuide, providerName } from './providers.js';

/**
 * The Admin Portal's pages: server-side JSX rendered to a string by preact-render-to-string, which
 * escapes every text and attribute value. No inline script or style (the CSP forbids both): the
 * stylesheet and the enhancing script are local files.
 */

const time = (date: Date | null) =>
  date ? `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC` : 'never';

export function Layout(props: {
  title: string;
  session?: PortalSession | undefined;
  /** Without JavaScript, reload every few seconds (the live check); the script does it in place. */
  refresh?: boolean;
  children: ComponentChildren;
}) {
  const { session } = props;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>{`${props.title} · ${session ? `${session.organizationName} · ` : ''}Admin Portal`}</title>
        <link rel="stylesheet" href="/portal/assets/portal.css" />
        <script src="/portal/assets/portal.js" defer />
        {props.refresh ? (
          <noscript>
            <meta http-equiv="refresh" content="5" />
          </noscript>
        ) : null}
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <div class="wrap">
            <p class="brand">
              {session ? <a href="/portal">{session.organizationName}</a> : <span>Admin Portal</span>}
              <span class="sub"> · identity provider settings</span>
            </p>
            {session?.returnUrl ? (
              <a class="back" href={session.returnUrl}>
                Back to the app
              </a>
            ) : null}
          </div>
        </header>
        <main id="main" class="wrap">
          {props.children}
        </main>
        {session ? (
          <footer class="wrap foot">
            This page is for {session.organizationName} only. Your session ends at {time(session.expiresAt)}.
          </footer>
        ) : null}
      </body>
    </html>
  );
}

export function Csrf(props: { session: PortalSession }) {
  return <input type="hidden" name="_csrf" value={props.session.csrfToken} />;
}

export function MessagePage(props: {
  title: string;
  session?: PortalSession | undefined;
  children: ComponentChildren;
}) {
  return (
    <Layout title={props.title} session={props.session}>
      <section class="card message">
        <h1>{props.title}</h1>
        {props.children}
      </section>
    </Layout>
  );
}

const STATE_TEXT: Record<ConnectionSummary['state'], string> = {
  waiting: 'Waiting for the first request',
  syncing: 'Syncing',
  errors: 'Errors in the last hour',
  token_expiring: 'Token expiring',
};

function StateBadge(props: { summary: ConnectionSummary; id?: string }) {
  return (
    <span class={`badge badge-${props.summary.state}`} {...(props.id ? { id: props.id } : {})}>
      {STATE_TEXT[props.summary.state]}
    </span>
  );
}

function stateSentence(summary: ConnectionSummary): string {
  const idp = providerName(summary.connection.provider);
  switch (summary.state) {
    case 'waiting':
      return `${idp} has not called yet. Once you have entered the URL and token there and turned provisioning on, the first request shows up here.`;
    case 'errors':
      return `${summary.hourErrors} of ${summary.hourRequests} requests in the last hour failed. The sync log says why.`;
    case 'token_expiring':
      return `${idp} still uses the previous token, which stops working at ${time(summary.tokenExpiresAt)}. Paste the new token into ${idp} before then.`;
    default:
      return `${idp} is sending changes; the last one arrived at ${time(summary.lastRequestAt)}.`;
  }
}

export function OverviewPage(props: { session: PortalSession; summaries: ConnectionSummary[] }) {
  return (
    <Layout title="Overview" session={props.session}>
      <h1>Directory sync</h1>
      <p class="lead">
        Connect your identity provider so that people get access (and lose it) as you manage them there.
      </p>
      {props.summaries.length === 0 ? (
        <section class="card">
          <h2>No identity provider connected yet</h2>
          <p>It takes about ten minutes: choose your identity provider and follow the steps.</p>
          <a class="button" href="/portal/connect">
            Connect an identity provider
          </a>
        </section>
      ) : (
        <>
          <ul class="connections">
            {props.summaries.map((summary) => (
              <li class="card" key={summary.connection.id}>
                <h2>
                  <a href={`/portal/connections/${summary.connection.id}`}>{summary.connection.name}</a>
                </h2>
                <p>
                  <StateBadge summary={summary} /> {providerName(summary.connection.provider)}
                </p>
                <p>{stateSentence(summary)}</p>
                <dl class="stats">
                  <div>
                    <dt>Last request</dt>
                    <dd>{time(summary.lastRequestAt)}</dd>
                  </div>
                  <div>
                    <dt>Users</dt>
                    <dd>{summary.users}</dd>
                  </div>
                  <div>
                    <dt>Groups</dt>
                    <dd>{summary.groups}</dd>
                  </div>
                </dl>
              </li>
            ))}
          </ul>
          <p>
            <a href="/portal/connect">Connect another identity provider</a>
          </p>
        </>
      )}
    </Layout>
  );
}

export function ChooseProviderPage(props: { session: PortalSession }) {
  return (
    <Layout title="Connect an identity provider" session={props.session}>
      <p class="crumbs">
        <a href="/portal">Overview</a> › Connect
      </p>
      <h1>Which identity provider do you use?</h1>
      <ul class="providers">
        {PROVIDERS.map((provider) => (
          <li key={provider.id}>
            <a class="provider" href={`/portal/connect/${provider.id}`}>
              {provider.name}
            </a>
          </li>
        ))}
      </ul>
    </Layout>
  );
}

function Steps(props: { provider: ProviderGuide; baseUrl: string; token: ComponentChildren }) {
  return (
    <ol class="steps">
      {props.provider.steps({ baseUrl: props.baseUrl, token: props.token }).map((step, i) => (
        <li key={i}>{step}</li>
      ))}
    </ol>
  );
}

export function GuidePage(props: {
  session: PortalSession;
  provider: ProviderGuide;
  baseUrlPattern: string;
  error?: string | undefined;
}) {
  const { provider } = props;
  return (
    <Layout title={`Connect ${provider.name}`} session={props.session}>
      <p class="crumbs">
        <a href="/portal">Overview</a> › <a href="/portal/connect">Connect</a> › {provider.name}
      </p>
      <h1>Connect {provider.name}</h1>
      {provider.note ? <p class="note">{provider.note}</p> : null}
      {provider.canConnect ? (
        <>
          <p>
            Here is what you will do in {provider.name}. The URL and the token are shown on the next page,
            once.
          </p>
          <Steps provider={provider} baseUrl={props.baseUrlPattern} token={<i>the token</i>} />
          <form method="post" action={`/portal/connect/${provider.id}`} class="card">
            <Csrf session={props.session} />
            <label for="name">Name of this connection</label>
            <input
              id="name"
              name="name"
              required
              maxLength={200}
              value={`${provider.name}`}
              aria-describedby="name-help"
              {...(props.error ? { 'aria-invalid': 'true' } : {})}
            />
            <p id="name-help" class="help">
              Only you see it, e.g. "{provider.name} production".
            </p>
            {props.error ? (
              <p class="error" role="alert">
                {props.error}
              </p>
            ) : null}
            <button type="submit">Create the connection and show the token</button>
          </form>
        </>
      ) : (
        <p>
          <a class="button" href="/portal/connect/generic">
            Use another SCIM 2.0 client
          </a>{' '}
          <a href="/portal/connect">Choose another identity provider</a>
        </p>
      )}
    </Layout>
  );
}

function Secret(props: { id: string; label: string; value: string; secret?: boolean }) {
  const field = (
    <div class="copyable">
      <input id={props.id} readOnly value={props.value} aria-label={props.label} spellcheck={false} />
      <button type="button" class="copy" data-copy={props.id} hidden>
        Copy
      </button>
    </div>
  );
  if (!props.secret) return field;
  return (
    <details class="reveal">
      <summary>Reveal the token</summary>
      {field}
    </details>
  );
}

export function TokenPage(props: {
  session: PortalSession;
  connectionId: string;
  provider: ProviderGuide;
  baseUrl: string;
  token: string;
  heading: string;
  previousExpireAt?: Date | undefined;
  now?: Date;
}) {
  const { provider } = props;
  return (
    <Layout title={props.heading} session={props.session}>
      <h1>{props.heading}</h1>
      <section class="card" aria-labelledby="values">
        <h2 id="values">The two values for {provider.name}</h2>
        <p class="warn">
          The token is shown on this page only. Copy it into {provider.name} now; if it is lost, create a new
          one.
        </p>
        <label for="base-url">SCIM base URL</label>
        <Secret id="base-url" label="SCIM base URL" value={props.baseUrl} />
        <p class="label">Token</p>
        <Secret id="token" label="SCIM token" value={props.token} secret />
        {props.previousExpireAt ? (
          <p>
            {props.previousExpireAt.getTime() <= (props.now ?? new Date()).getTime()
              ? 'The previous token has stopped working.'
              : `The previous token keeps working until ${time(props.previousExpireAt)}.`}
          </p>
        ) : null}
      </section>
      <section class="card">
        <h2>Steps in {provider.name}</h2>
        <Steps provider={provider} baseUrl={props.baseUrl} token={<b>the token above</b>} />
      </section>
      <p>
        <a class="button" href={`/portal/connections/${props.connectionId}`}>
          Done: check the connection
        </a>
      </p>
    </Layout>
  );
}

function ConnectionNav(props: { id: string; current: 'live' | 'token' | 'roles' | 'log' }) {
  const items = [
    ['live', '', 'Live check'],
    ['token', '/token', 'Token'],
    ['roles', '/roles', 'Groups and roles'],
    ['log', '/log', 'Sync log'],
  ] as const;
  return (
    <nav class="tabs" aria-label="Connection">
      {items.map(([key, path, label]) => (
        <a
          key={key}
          href={`/portal/connections/${props.id}${path}`}
          {...(key === props.current ? { 'aria-current': 'page' } : {})}
        >
          {label}
        </a>
      ))}
    </nav>
  );
}

function ConnectionHeader(props: {
  summary: ConnectionSummary;
  current: 'live' | 'token' | 'roles' | 'log';
}) {
  const { connection } = props.summary;
  return (
    <>
      <p class="crumbs">
        <a href="/portal">Overview</a> › {connection.name}
      </p>
      <h1>
        {connection.name} <StateBadge summary={props.summary} id="state" />
      </h1>
      <ConnectionNav id={connection.id} current={props.current} />
    </>
  );
}

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

const GRACE_CHOICES = [
  ['0', 'Immediately: revoke the current token now (after a leak)'],
  ['3600', '1 hour'],
  ['86400', '24 hours'],
  ['604800', '7 days'],
] as const;

export function TokenSettingsPage(props: {
  session: PortalSession;
  summary: ConnectionSummary;
  tokens: { hint: string; created_at: Date; expires_at: Date | null; last_used_at: Date | null }[];
  now: Date;
}) {
  const { connection } = props.summary;
  return (
    <Layout title="Token" session={props.session}>
      <ConnectionHeader summary={props.summary} current="token" />
      <section class="card">
        <h2>Tokens</h2>
        <table>
          <caption class="visually-hidden">SCIM tokens of this connection</caption>
          <thead>
            <tr>
              <th scope="col">Token</th>
              <th scope="col">Created</th>
              <th scope="col">Last used</th>
              <th scope="col">Works until</th>
            </tr>
          </thead>
          <tbody>
            {props.tokens.map((token) => (
              <tr key={token.hint + token.created_at.toISOString()}>
                <td>
                  <code>{token.hint}</code>
                </td>
                <td>{time(token.created_at)}</td>
                <td>{time(token.last_used_at)}</td>
                <td>
                  {token.expires_at === null
                    ? 'no end'
                    : token.expires_at <= props.now
                      ? 'revoked'
                      : time(token.expires_at)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <form method="post" action={`/portal/connections/${connection.id}/token`} class="card">
        <Csrf session={props.session} />
        <h2>Replace the token</h2>
        <p>You get a new token to paste into {providerName(connection.provider)}.</p>
        <fieldset>
          <legend>How long should the current token keep working?</legend>
          {GRACE_CHOICES.map(([value, label]) => (
            <div class="choice" key={value}>
              <input
                type="radio"
                id={`grace-${value}`}
                name="grace_seconds"
                value={value}
                checked={value === '86400'}
              />
              <label for={`grace-${value}`}>{label}</label>
            </div>
          ))}
        </fieldset>
        <button type="submit">Create a new token</button>
      </form>
    </Layout>
  );
}

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
  preview?: RoleMappingsPreview | undefined;
  saved?: boolean;
  error?: string | undefined;
}) {
  const { connection } = props.summary;
  const roleName = (key: string) => props.roles.find((role) => role.key === key)?.name ?? key;
  return (
    <Layout title="Groups and roles" session={props.session}>
      <ConnectionHeader summary={props.summary} current="roles" />
      {props.saved ? (
        <p class="ok" role="status">
          Saved. Roles are updated.
        </p>
      ) : null}
      {props.error ? (
        <p class="error" role="alert">
          {props.error}
        </p>
      ) : null}
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

function Preview(props: { preview: RoleMappingsPreview; roleName: (key: string) => string }) {
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

export function SyncLogPage(props: {
  session: PortalSession;
  summary: ConnectionSummary;
  lines: SyncLogLine[];
  errorsOnly: boolean;
}) {
  const { connection } = props.summary;
  const idp = providerName(connection.provider);
  return (
    <Layout title="Sync log" session={props.session}>
      <ConnectionHeader summary={props.summary} current="log" />
      <form method="get" action={`/portal/connections/${connection.id}/log`} class="filter">
        <div class="choice">
          <input type="checkbox" id="errors" name="errors" value="1" checked={props.errorsOnly} />
          <label for="errors">Only failed requests</label>
        </div>
        <button type="submit" class="secondary">
          Filter
        </button>
      </form>
      {props.lines.length === 0 ? (
        <p>{props.errorsOnly ? 'No failed requests.' : `${idp} has not sent any request yet.`}</p>
      ) : (
        <div class="scroll">
          <table class="log">
            <caption class="visually-hidden">Recent requests from {idp}, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Request</th>
                <th scope="col">Result</th>
                <th scope="col">Request id</th>
              </tr>
            </thead>
            <tbody>
              {props.lines.map((line) => (
                <tr key={line.request_id} class={line.status >= 400 ? 'failed' : ''}>
                  <td>{time(line.created_at)}</td>
                  <td>
                    <code>
                      {line.method} {line.path}
                    </code>
                  </td>
                  <td>
                    {line.status}
                    {line.status >= 400 ? <> · {explainFailure(line, idp)}</> : null}
                  </td>
                  <td>
                    <code>{line.request_id}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Layout>
  );
}
