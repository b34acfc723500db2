import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { type Progress, Simulator, SimulatorError } from './commands.js';
import { PROFILE_NAMES, type ProfileName, profileNamed } from './profiles.js';
import { ScimClient, ScimRequestError, type Stats } from './scim-client.js';

const USAGE = `roster-idp-simulator: plays an identity provider against a Roster connection's SCIM endpoint

usage: npm run simulate -- <command> [options]

commands
  seed --users N --groups G       push a company: N people (departments, titles, managers), G groups
  deactivate <userName>           the IdP deactivates (unassigns, suspends) a person
  mass-deactivate --users N       deactivates the first N people of the seeded company at once
                                  (a mistaken assignment rule; see the deprovisioning guard)
  reactivate <userName>           and activates them again
  move <userName> <group>         out of their groups, into <group>
  delete <userName>               hard delete (Entra only: Okta never deletes users)
  delete --group <name>           delete a group
  rename-group <name> <new name>
  replay <file.json>              a scripted day: a JSON array of steps (see days/sample-day.json)

options
  --url <scim base url>           or ROSTER_SCIM_URL  (the connection's scim.base_url)
  --token <scim token>            or ROSTER_SCIM_TOKEN (the connection's scim.token)
  --profile okta|entra|entra-flag or ROSTER_IDP_PROFILE (default okta)
  --concurrency <n>               requests in flight during seed (default 4)
  --seed <n>                      which made-up company (default 1; same seed, same people)
  --domain <domain>               email domain of seeded people (default acme.example)
  --max-retries <n>               retries of a request answered 429/503 (default 5)
  --max-retry-after <seconds>     longest Retry-After to wait before a retry (default 30; a
                                  longer one stops the run, as if left to the IdP's next cycle)
  --no-progress                   no progress bar
`;

function fail(message: string, code: number): never {
  process.stderr.write(`roster-idp-simulator: ${message}\n`);
  process.exit(code);
}

const count = (name: string, value: string | undefined, fallback?: number): number => {
  if (value === undefined) {
    if (fallback === undefined) fail(`--${name} is required\n\n${USAGE}`, 2);
    return fallback;
  }
  if (!/^\d+$/.test(value)) fail(`--${name} must be a whole number (got "${value}")`, 2);
  return Number(value);
};

/** A progress bar on stderr when it is a terminal (cli-progress draws nothing otherwise). */
function progressBar(enabled: boolean): Progress {
  if (!enabled) return { start() {}, increment() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    { format: ' {label} [{bar}] {value}/{total} {percentage}% | {duration_formatted}', hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  return {
    start: (total, label) => bar.start(total, 0, { label }),
    increment: () => bar.increment(),
    stop: () => bar.stop(),
  };
}

/** The summary table: per kind of request, how many, what came back, retries, time. */
export function summaryTable(stats: Stats, profile: string): string {
  const rows = [...stats.byOperation.entries()].sort(([a], [b]) => a.localeCompare(b));
  const statusText = (statuses: Map<number, number>) =>
    [...statuses.entries()]
      .sort(([a], [b]) => a - b)
      .map(([status, n]) => `${status}×${n}`)
      .join(' ');
  const all = new Map<number, number>();
  for (const [, s] of rows) for (const [status, n] of s.statuses) all.set(status, (all.get(status) ?? 0) + n);
  const table = [
    ['request', 'count', 'statuses', 'retries', 'time'],
    ...rows.map(([op, s]) => [
      op,
      String(s.requests),
      statusText(s.statuses),
      String(s.retries),
      `${(s.ms / 1000).toFixed(2)} s`,
    ]),
    [
      'total',
      String(stats.requests),
      statusText(all),
      String(stats.retries),
      `${((performance.now() - stats.startedAt) / 1000).toFixed(2)} s wall`,
    ],
  ];
  const widths = table[0]!.map((_, col) => Math.max(...table.map((row) => row[col]!.length)));
  const line = (row: string[]) =>
    row
      .map((cell, col) => cell.padEnd(widths[col]!))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [
    `summary (${profile} profile)`,
    line(table[0]!),
    rule,
    ...table.slice(1, -1).map(line),
    rule,
    line(table.at(-1)!),
  ].join('\n');
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parse>;
  const parse = () =>
    parseArgs({
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        profile: { type: 'string' },
        users: { type: 'string' },
        groups: { type: 'string' },
        group: { type: 'string' },
        concurrency: { type: 'string' },
        seed: { type: 'string' },
        domain: { type: 'string' },
        'max-retries': { type: 'string' },
        'max-retry-after': { type: 'string' },
        'no-progress': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  try {
    parsed = parse();
  } catch (error) {
    fail(`${(error as Error).message}\n\n${USAGE}`, 2);
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    process.exit(command || values.help ? 0 : 2);
  }

  const url = values.url ?? process.env.ROSTER_SCIM_URL;
  const token = values.token ?? process.env.ROSTER_SCIM_TOKEN;
  if (!url || !token) {
    fail(
      "set the connection's SCIM base URL and token: --url and --token, or ROSTER_SCIM_URL and ROSTER_SCIM_TOKEN (both are in the answer to POST /v1/organizations/{id}/connections)",
      2,
    );
  }
  const profileName = (values.profile ?? process.env.ROSTER_IDP_PROFILE ?? 'okta') as ProfileName;
  if (!PROFILE_NAMES.includes(profileName)) fail(`--profile must be one of ${PROFILE_NAMES.join(', ')}`, 2);
  const profile = profileNamed(profileName);
  const scim = new ScimClient({
    baseUrl: url,
    token,
    userAgent: profile.userAgent,
    maxRetries: count('max-retries', values['max-retries'], 5),
    maxRetryAfterMs: count('max-retry-after', values['max-retry-after'], 30) * 1000,
  });
  const simulator = new Simulator(scim, profile, {
    concurrency: count('concurrency', values.concurrency, 4),
    progress: progressBar(!values['no-progress']),
    log: (line) => process.stdout.write(`${line}\n`),
  });
  const needArgs = (n: number, usage: string) => {
    if (args.length !== n) fail(`usage: ${usage}`, 2);
  };

  let failure: Error | undefined;
  try {
    switch (command) {
      case 'seed':
        await simulator.seed({
          users: count('users', values.users),
          groups: count('groups', values.groups),
          seed: count('seed', values.seed, 1),
          domain: values.domain,
        });
        break;
      case 'deactivate':
      case 'reactivate':
        needArgs(1, `${command} <userName>`);
        await simulator.setActive(args[0]!, command === 'reactivate');
        break;
      case 'mass-deactivate':
        needArgs(0, 'mass-deactivate --users N [--seed n] [--domain d]');
        await simulator.deactivateMany({
          users: count('users', values.users),
          seed: count('seed', values.seed, 1),
          domain: values.domain,
        });
        break;
      case 'move':
        needArgs(2, 'move <userName> <group>');
        await simulator.move(args[0]!, args[1]!);
        break;
      case 'delete':
        if (values.group) await simulator.deleteGroup(values.group);
        else {
          needArgs(1, 'delete <userName>  or  delete --group <name>');
          await simulator.deleteUser(args[0]!);
        }
        break;
      case 'rename-group':
        needArgs(2, 'rename-group <name> <new name>');
        await simulator.renameGroup(args[0]!, args[1]!);
        break;
      case 'replay': {
        needArgs(1, 'replay <file.json>');
        let steps: unknown;
        try {
          steps = JSON.parse(readFileSync(args[0]!, 'utf8'));
        } catch (error) {
          fail(`cannot read ${args[0]}: ${(error as Error).message}`, 2);
        }
        const n = await simulator.replay(steps);
        process.stdout.write(`replayed ${n} steps\n`);
        break;
      }
      default:
        fail(`unknown command "${command}"\n\n${USAGE}`, 2);
    }
  } catch (error) {
    failure = error as Error;
  }
  process.stdout.write(`\n${summaryTable(scim.stats, profile.name)}\n`);
  if (failure) {
    if (failure instanceof ScimRequestError && (failure.status === 401 || failure.status === 403)) {
      fail(
        `${failure.message}\nCheck the token: it is the connection's scim.token (a rotated token stops working after its grace period).`,
        1,
      );
    }
    if (failure instanceof ScimRequestError && failure.status === undefined) {
      fail(`${failure.message}\nIs Roster running at ${url}?`, 1);
    }
    if (failure instanceof ScimRequestError && failure.status === 503) {
      fail(
        `${failure.message}\nThe IdP would retry it later: run the same command again once the connection is released (POST /v1/connections/{id}/deprovision_guard/release), or pass --max-retry-after to wait as long as the server asks.`,
        1,
      );
    }
    if (failure instanceof ScimRequestError || failure instanceof SimulatorError) fail(failure.message, 1);
    throw failure;
  }
}

main().catch((error: unknown) => fail((error as Error)?.stack ?? String(error), 1));
