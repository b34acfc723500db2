import type { PortalSession } from '../../portal/links.js';
import type { ConnectionSummary } from '../../portal/queries.js';
import { ConnectionHeader, Csrf, Layout, time } from './layout.js';
import { providerName } from './providers.js';

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
