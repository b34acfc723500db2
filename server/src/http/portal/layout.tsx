import type { ComponentChildren } from 'preact';
import type { PortalSession } from '../../portal/links.js';
import type { ConnectionSummary } from '../../portal/queries.js';
import { providerName } from './providers.js';

/**
 * What every Admin Portal page shares: the layout, the CSRF field, the connection's header and tabs.
 * Pages are server-side JSX rendered to a string by preact-render-to-string, which escapes every
 * text and attribute value. No inline script or style (the CSP forbids both): the stylesheet and
 * the enhancing script are local files. One module per page beside this one.
 */

export const time = (date: Date | null) =>
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

/** What a form did: a success line (read out politely) and an error (read out at once). */
export function Notices(props: { ok?: string | undefined; error?: string | undefined }) {
  return (
    <>
      {props.ok ? (
        <p class="ok" role="status">
          {props.ok}
        </p>
      ) : null}
      {props.error ? (
        <p class="error" role="alert">
          {props.error}
        </p>
      ) : null}
    </>
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
  held: 'Deactivations held',
  waiting: 'Waiting for the first request',
  syncing: 'Syncing',
  errors: 'Errors in the last hour',
  token_expiring: 'Token expiring',
};

export function StateBadge(props: { summary: ConnectionSummary; id?: string }) {
  return (
    <span class={`badge badge-${props.summary.state}`} {...(props.id ? { id: props.id } : {})}>
      {STATE_TEXT[props.summary.state]}
    </span>
  );
}

export function stateSentence(summary: ConnectionSummary): string {
  const idp = providerName(summary.connection.provider);
  switch (summary.state) {
    case 'held':
      return `${idp} tried to deactivate more people than the guard allows. Those deactivations wait until you review them on the Deactivation guard tab.`;
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

export type ConnectionTab = 'live' | 'token' | 'roles' | 'guard' | 'log';

function ConnectionNav(props: { id: string; current: ConnectionTab }) {
  const items = [
    ['live', '', 'Live check'],
    ['token', '/token', 'Token'],
    ['roles', '/roles', 'Groups and roles'],
    ['guard', '/guard', 'Deactivation guard'],
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

export function ConnectionHeader(props: { summary: ConnectionSummary; current: ConnectionTab }) {
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
