import type { PortalSession } from '../../portal/links.js';
import type { ConnectionSummary } from '../../portal/queries.js';
import { Layout, StateBadge, stateSentence, time } from './layout.js';
import { providerName } from './providers.js';

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
