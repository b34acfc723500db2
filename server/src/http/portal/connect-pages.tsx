import type { ComponentChildren } from 'preact';
import type { PortalSession } from '../../portal/links.js';
import { GuardFields, type GuardFormValues } from './guard-page.js';
import { Csrf, Layout, time } from './layout.js';
import { PROVIDERS, type ProviderGuide } from './providers.js';

/** Setting a connection up: choose the IdP, read its steps, name the connection, get the token. */

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
  guard: GuardFormValues;
  guardSuggestion: string;
  name?: string | undefined;
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
              value={props.name ?? provider.name}
              aria-describedby="name-help"
              {...(props.error && !props.name ? { 'aria-invalid': 'true' } : {})}
            />
            <p id="name-help" class="help">
              Only you see it, e.g. "{provider.name} production".
            </p>
            <GuardFields values={props.guard} suggestion={props.guardSuggestion} />
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
