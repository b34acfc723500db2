import type { Schemas } from '../../contract.js';
import { type GuardInput, suggestGuard } from '../../directory/deprovision-guard.js';
import type { PortalSession } from '../../portal/links.js';
import type { ConnectionSummary } from '../../portal/queries.js';
import { ConnectionHeader, Csrf, Layout, Notices, time } from './layout.js';
import { providerName } from './providers.js';

/**
 * The deactivation guard (the API's deprovision_guard) as the IT admin sees it: offered with
 * suggested limits when a connection is set up, changed or turned off later, and, when it holds
 * the IdP's deactivations, what went through and the ways to release it.
 */

export const WINDOW_CHOICES = [
  ['15m', '15 minutes'],
  ['1h', '1 hour'],
  ['6h', '6 hours'],
  ['1d', '1 day'],
] as const;

/** The form's fields as typed (strings), so that a refused form shows what was entered. */
export interface GuardFormValues {
  enabled: boolean;
  max_in_window: string;
  max_percent: string;
  window: string;
}

export const formValues = (guard: {
  enabled: boolean;
  max_in_window: number | null;
  max_percent: number | null;
  window: string;
}): GuardFormValues => ({
  enabled: guard.enabled,
  max_in_window: guard.max_in_window === null ? '' : String(guard.max_in_window),
  max_percent: guard.max_percent === null ? '' : String(guard.max_percent),
  window: guard.window,
});

/**
 * Reads the guard fields of a posted form (`guard` is the on/off checkbox). Checked here, with
 * the limits of the API's contract, so that a refused form changes nothing and says why.
 */
export function parseGuardForm(
  body: Record<string, unknown>,
): { input: GuardInput; values: GuardFormValues } | { error: string; values: GuardFormValues } {
  const text = (name: string) => (typeof body[name] === 'string' ? (body[name] as string).trim() : '');
  const values: GuardFormValues = {
    enabled: body.guard === 'on',
    max_in_window: text('max_in_window'),
    max_percent: text('max_percent'),
    window: text('window') || '1h',
  };
  const count = values.max_in_window === '' ? null : Number(values.max_in_window);
  const percent = values.max_percent === '' ? null : Number(values.max_percent);
  if (count !== null && !(Number.isInteger(count) && count >= 1 && count <= 1_000_000)) {
    return { error: 'The number of people must be a whole number from 1 to 1,000,000.', values };
  }
  if (percent !== null && !(Number.isFinite(percent) && percent > 0 && percent <= 100)) {
    return { error: 'The percentage must be more than 0 and at most 100.', values };
  }
  if (!WINDOW_CHOICES.some(([value]) => value === values.window)) {
    return { error: 'Choose one of the listed time windows.', values };
  }
  if (values.enabled && count === null && percent === null) {
    return { error: 'Give a number of people, a percentage or both.', values };
  }
  return {
    input: { enabled: values.enabled, max_in_window: count, max_percent: percent, window: values.window },
    values,
  };
}

/** The limits suggested for `population` people, as form values, and where they come from. */
export function suggestedValues(population: number): { values: GuardFormValues; suggestion: string } {
  const suggested = suggestGuard(population);
  return {
    values: formValues({ enabled: true, ...suggested }),
    suggestion:
      population > 0
        ? `Suggested for ${population} ${population === 1 ? 'person' : 'people'}: at most ${suggested.max_in_window} or ${suggested.max_percent} % within 1 hour, whichever is lower.`
        : `Suggested before the first sync: at most ${suggested.max_in_window} or ${suggested.max_percent} % within 1 hour, whichever is lower (the percentage follows the directory as it grows).`,
  };
}

/** The on/off switch and the limits; `suggestion` says where the proposed numbers come from. */
export function GuardFields(props: { values: GuardFormValues; suggestion: string }) {
  const { values } = props;
  return (
    <fieldset class="guard" aria-describedby="guard-help">
      <legend>Deactivation guard</legend>
      <div class="choice">
        <input type="checkbox" id="guard" name="guard" value="on" checked={values.enabled} />
        <label for="guard">Hold mass deactivations (recommended)</label>
      </div>
      <p id="guard-help" class="help">
        A mistake in the identity provider (an assignment rule, a deleted group) can deactivate everyone at
        once. When more people than this are deactivated or deleted within the time window, Roster applies
        none of the rest and tells the identity provider to retry later, until you review it here.{' '}
        {props.suggestion}
      </p>
      <div class="limits">
        <div>
          <label for="max_in_window">At most this many people</label>
          <input
            type="number"
            id="max_in_window"
            name="max_in_window"
            min={1}
            max={1000000}
            step={1}
            value={values.max_in_window}
          />
        </div>
        <div>
          <label for="max_percent">or this percentage of the users</label>
          <input
            type="number"
            id="max_percent"
            name="max_percent"
            min={0.1}
            max={100}
            step="any"
            value={values.max_percent}
          />
        </div>
        <div>
          <label for="window">within</label>
          <select id="window" name="window">
            {WINDOW_CHOICES.map(([value, label]) => (
              <option key={value} value={value} selected={values.window === value}>
                {label}
              </option>
            ))}
          </select>
        </div>
      </div>
    </fieldset>
  );
}

export interface HeldView {
  /** The deprovisions that went through in the window and stay applied, latest first. */
  applied: { user_id: string; user_name: string | null; kind: string; at: string }[];
  limit: number;
}

const ShownApplied = 20;

function Held(props: {
  summary: ConnectionSummary;
  guard: Schemas['DeprovisionGuard'];
  held: HeldView;
  session: PortalSession;
}) {
  const idp = providerName(props.summary.connection.provider);
  const { applied, limit } = props.held;
  const id = props.summary.connection.id;
  return (
    <section id="held" class="card alert" aria-labelledby="held-title">
      <h2 id="held-title">Deactivations are held since {time(new Date(props.guard.held_at!))}</h2>
      <p>
        {idp} tried to deactivate or delete more people than the guard allows ({limit} within{' '}
        {props.guard.window}). Nothing was applied after that: the others keep their access, and {idp} keeps
        retrying. These {applied.length} went through before the guard held, and stay deactivated:
      </p>
      <ul class="plain">
        {applied.slice(0, ShownApplied).map((row) => (
          <li key={row.user_id}>
            {row.user_name ?? row.user_id}{' '}
            <span class="muted">
              {row.kind} at {time(new Date(row.at))}
            </span>
          </li>
        ))}
      </ul>
      {applied.length > ShownApplied ? <p class="muted">…and {applied.length - ShownApplied} more.</p> : null}
      <p>
        <b>If this is a mistake</b>, fix it in {idp}: the held deactivations are never applied, and {idp}{' '}
        reactivates anyone it deactivated by mistake. <b>If it was meant</b> (people really are leaving),
        release the guard:
      </p>
      <form method="post" action={`/portal/connections/${id}/guard/release`}>
        <Csrf session={props.session} />
        <button type="submit" name="window" value="1h">
          Let every deactivation through for 1 hour
        </button>
        <button type="submit" name="window" value="1d" class="secondary">
          For 1 day
        </button>
        <button type="submit" name="window" value="" class="secondary">
          Let the next {limit} through, then hold again
        </button>
      </form>
    </section>
  );
}

export function GuardPage(props: {
  session: PortalSession;
  summary: ConnectionSummary;
  guard: Schemas['DeprovisionGuard'];
  values: GuardFormValues;
  suggestion: string;
  /** Deprovisions counted in the current window. */
  counted: number;
  held?: HeldView | undefined;
  now: Date;
  status?: 'saved' | 'released' | undefined;
  error?: string | undefined;
}) {
  const { guard, summary } = props;
  const id = summary.connection.id;
  const suspended = guard.suspended_until && new Date(guard.suspended_until) > props.now;
  return (
    <Layout title="Deactivation guard" session={props.session}>
      <ConnectionHeader summary={summary} current="guard" />
      <Notices
        ok={
          props.status &&
          (props.status === 'saved' ? 'Saved.' : 'Released. The identity provider’s retries now go through.')
        }
        error={props.error}
      />
      {props.held ? <Held summary={summary} guard={guard} held={props.held} session={props.session} /> : null}
      <p id="guard-state">
        {!guard.enabled
          ? 'The guard is off: every deactivation is applied at once.'
          : suspended
            ? `Released until ${time(new Date(guard.suspended_until!))}: every deactivation is applied until then.`
            : `The guard is on: ${props.counted} ${props.counted === 1 ? 'person' : 'people'} deactivated in the current window.`}
      </p>
      <form method="post" action={`/portal/connections/${id}/guard`} class="card">
        <Csrf session={props.session} />
        <GuardFields values={props.values} suggestion={props.suggestion} />
        <button type="submit">Save</button>
      </form>
    </Layout>
  );
}
