import type { PortalSession } from '../../portal/links.js';
import type { ConnectionSummary, SyncLogLine } from '../../portal/queries.js';
import { explainFailure } from './explain.js';
import { ConnectionHeader, Layout, time } from './layout.js';
import { providerName } from './providers.js';

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
