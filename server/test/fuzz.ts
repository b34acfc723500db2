import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { arbitraries, type HostileRequest } from './hostile-requests.js';

/**
 * The fuzz run (issue 16): generated hostile SCIM and /v1 requests from tenant A (its own SCIM
 * connection and an API key confined to its organization) while legitimate traffic provisions
 * both tenants (A through another connection, B through its own). Checked: no 5xx, no request
 * over the timeout (a hang), nothing of tenant B in a response to A unless the request carried it,
 * and afterwards the directories of the two legitimate connections are exactly what their own
 * traffic built. `server/test/fuzz.test.ts` runs a seeded sample; `npm run fuzz` the long run.
 */

export interface FuzzOptions {
  /** The server: base URL and management key (used only to set the tenants up). */
  url: string;
  secretKey: string;
  requests: number;
  seed: number;
  concurrency?: number;
  /** A request taking longer than this is a hang. */
  timeoutMs?: number;
  /** Appends every hostile request as a JSON line (to replay one that failed). */
  log?: string;
}

export interface FuzzReport {
  sent: number;
  seconds: number;
  statuses: Record<string, number>;
  legitimateOps: number;
  failures: string[];
}

interface Conn {
  organizationId: string;
  connectionId: string;
  base: string;
  token: string;
}

interface Reply {
  status: number;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: JSON read field by field
  body: any;
}

const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const { url, secretKey } = options;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const call = async (
    method: string,
    path: string,
    token: string,
    body?: string,
    contentType = 'application/json',
  ): Promise<Reply> => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': contentType }),
      },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: response.status, text, body: parsed };
  };
  const admin = (method: string, path: string, body?: unknown) =>
    call(method, path, secretKey, body === undefined ? undefined : JSON.stringify(body));
  const scim = (c: Conn, method: string, path: string, body?: unknown) =>
    call(
      method,
      `${c.base}${path}`,
      c.token,
      body === undefined ? undefined : JSON.stringify(body),
      'application/scim+json',
    );

  const connection = async (organizationId: string, provider: string): Promise<Conn> => {
    const created = await admin('POST', `/v1/organizations/${organizationId}/connections`, {
      name: provider,
      provider,
    });
    if (created.status !== 201) throw new Error(`connection: ${created.text}`);
    return {
      organizationId,
      connectionId: created.body.id,
      base: new URL(created.body.scim.base_url).pathname,
      token: created.body.scim.token,
    };
  };
  const orgA = (await admin('POST', '/v1/organizations', { name: 'Fuzz A' })).body.id as string;
  const orgB = (await admin('POST', '/v1/organizations', { name: 'Fuzz B' })).body.id as string;
  const attacker = await connection(orgA, 'okta');
  const legitA = await connection(orgA, 'entra');
  const legitB = await connection(orgB, 'okta');
  const key = await admin('POST', '/v1/api_keys', {
    name: 'fuzz A',
    organization_id: orgA,
    scopes: ['read', 'write'],
  });
  if (key.status !== 201) throw new Error(`api key: ${key.text}`);
  const keyA = key.body.key as string;

  // Resources for the generators to aim at, and B's values that must never reach A.
  const idsOfA: string[] = [];
  const idsOfB: string[] = [];
  const secretsOfB: string[] = [orgB, legitB.connectionId];
  for (let i = 0; i < 3; i++) {
    const own = await scim(attacker, 'POST', '/Users', { userName: `attacker${i}@a.test`, active: true });
    idsOfA.push(own.body.id);
  }
  const legit = { A: new Model(legitA), B: new Model(legitB) };
  // The legitimate connections' first users exist before the hostile traffic starts, so that it
  // can aim at them: A's siblings (same organization, other connection) and B's.
  for (let i = 0; i < 3; i++) {
    await legit.A.step(scim);
    await legit.B.step(scim);
  }
  idsOfA.push(...legit.A.ids());
  for (const id of legit.B.ids()) idsOfB.push(id);
  for (const name of legit.B.userNames()) secretsOfB.push(name);
  const groupB = await legit.B.group(scim);
  idsOfB.push(groupB);
  secretsOfB.push(groupB, ...idsOfB);

  const { scimRequest, v1Request } = arbitraries({
    idsOfA,
    idsOfB,
    a: { organizationId: orgA, connectionId: attacker.connectionId },
  });
  const requests: HostileRequest[] = [];
  for (let batch = 0; requests.length < options.requests; batch++) {
    const s = fc.sample(scimRequest, { numRuns: 70, seed: options.seed + 2 * batch });
    const v = fc.sample(v1Request, { numRuns: 30, seed: options.seed + 2 * batch + 1 });
    for (let k = 0; k < 10; k++) requests.push(...s.slice(7 * k, 7 * k + 7), ...v.slice(3 * k, 3 * k + 3));
  }
  requests.length = options.requests;
  requests.reverse();

  const failures: string[] = [];
  const statuses: Record<string, number> = {};
  let sent = 0;
  let done = false;
  const started = performance.now();
  const hostile = Promise.all(
    Array.from({ length: options.concurrency ?? 4 }, async () => {
      for (;;) {
        const request = requests.pop();
        if (!request) return;
        sent++;
        if (options.log) appendFileSync(options.log, `${JSON.stringify(request)}\n`);
        const shown = `${request.method} ${request.path.slice(0, 200)} ${request.body?.slice(0, 200) ?? ''}`;
        let reply: Reply;
        try {
          reply =
            request.kind === 'scim'
              ? await call(
                  request.method,
                  `${attacker.base}${request.path}`,
                  attacker.token,
                  request.body,
                  request.contentType ?? 'application/scim+json',
                )
              : await call(
                  request.method,
                  `/v1${request.path}`,
                  keyA,
                  request.body,
                  request.contentType ?? 'application/json',
                );
        } catch (error) {
          failures.push(`no answer (${(error as Error).name}): ${shown}`);
          continue;
        }
        statuses[reply.status] = (statuses[reply.status] ?? 0) + 1;
        if (reply.status >= 500) failures.push(`${reply.status}: ${shown}: ${reply.text.slice(0, 300)}`);
        const asked = `${request.path} ${request.body ?? ''}`;
        const leaked = secretsOfB.filter((secret) => reply.text.includes(secret) && !asked.includes(secret));
        if (leaked.length > 0) failures.push(`leaked ${leaked.join(', ')}: ${shown}`);
        // An id of B in the resource path must never be served. In the query string it is only a
        // value to compare (a filter): a search may answer 200, and what B's resources would put in
        // the answer (B's user names, organization, connection) is what the leak check above finds.
        const [route = ''] = request.path.split('?');
        if (idsOfB.some((id) => route.includes(id)) && reply.status < 400) {
          failures.push(`reached another tenant's resource (${reply.status}): ${shown}`);
        }
      }
    }),
  ).finally(() => {
    done = true;
  });
  // Legitimate traffic in both tenants for as long as the hostile traffic lasts.
  let legitimateOps = 0;
  const legitimate = Promise.all(
    [legit.A, legit.B].map(async (model) => {
      await model.group(scim);
      while (!done) {
        await model.step(scim);
        legitimateOps++;
      }
    }),
  );
  await Promise.all([hostile, legitimate]);
  const seconds = (performance.now() - started) / 1000;

  for (const [name, model] of Object.entries(legit)) {
    const problems = await model.compare(scim);
    failures.push(...problems.map((p) => `tenant ${name}: ${p}`));
  }
  return { sent, seconds, statuses, legitimateOps, failures };
}

type Scim = (c: Conn, method: string, path: string, body?: unknown) => Promise<Reply>;

/** One tenant's legitimate provisioning, and what it should have built. */
class Model {
  readonly #conn: Conn;
  readonly #users = new Map<string, { id: string; userName: string; displayName: string; active: boolean }>();
  readonly #groups = new Map<string, { name: string; members: Set<string> }>();
  #n = 0;

  constructor(conn: Conn) {
    this.#conn = conn;
  }

  ids = () => [...this.#users.keys()];
  userNames = () => [...this.#users.values()].map((u) => u.userName);

  async group(scim: Scim): Promise<string> {
    const name = `Legit group ${this.#conn.connectionId.slice(-6)} ${this.#groups.size}`;
    const created = await scim(this.#conn, 'POST', '/Groups', { displayName: name });
    if (created.status !== 201) throw new Error(`legit group: ${created.text}`);
    this.#groups.set(created.body.id, { name, members: new Set() });
    return created.body.id;
  }

  /** Creates a user, renames one, adds one to a group, deactivates one: whichever comes next. */
  async step(scim: Scim): Promise<void> {
    const n = this.#n++;
    const expect = (reply: Reply, status: number, what: string) => {
      if (reply.status !== status)
        throw new Error(`legitimate ${what}: ${reply.status} ${reply.text.slice(0, 300)}`);
    };
    const ids = this.ids();
    const kind = ids.length < 3 ? 0 : n % 4;
    if (kind === 0) {
      const userName = `legit${n}.${this.#conn.connectionId.slice(-6)}@example.com`;
      const created = await scim(this.#conn, 'POST', '/Users', {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
        userName,
        displayName: `Legit ${n}`,
        active: true,
      });
      expect(created, 201, 'create');
      this.#users.set(created.body.id, {
        id: created.body.id,
        userName,
        displayName: `Legit ${n}`,
        active: true,
      });
      return;
    }
    const user = this.#users.get(ids[(n * 7) % ids.length]!)!;
    if (kind === 1) {
      const displayName = `Legit ${n} renamed`;
      const reply = await scim(this.#conn, 'PATCH', `/Users/${user.id}`, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'replace', path: 'displayName', value: displayName }],
      });
      expect(reply, 200, 'rename');
      user.displayName = displayName;
    } else if (kind === 2 && this.#groups.size > 0) {
      const [groupId, group] = [...this.#groups][n % this.#groups.size]!;
      const reply = await scim(this.#conn, 'PATCH', `/Groups/${groupId}`, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'add', path: 'members', value: [{ value: user.id }] }],
      });
      expect(reply, 204, 'member add');
      group.members.add(user.id);
    } else if (kind === 3) {
      const active = !user.active;
      const reply = await scim(this.#conn, 'PATCH', `/Users/${user.id}`, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'replace', path: 'active', value: active }],
      });
      expect(reply, 200, 'activation');
      user.active = active;
    }
  }

  /** The connection's users and groups as SCIM lists them, against the model: one line per difference. */
  async compare(scim: Scim): Promise<string[]> {
    const listed = async (type: string) => {
      const all: Record<string, unknown>[] = [];
      for (let start = 1; ; start += 100) {
        const page = await scim(this.#conn, 'GET', `/${type}?startIndex=${start}&count=100`);
        if (page.status !== 200) throw new Error(`list ${type}: ${page.text}`);
        all.push(...page.body.Resources);
        if (page.body.Resources.length < 100) return all;
      }
    };
    const problems: string[] = [];
    const users = new Map(
      (await listed('Users')).map((u) => [
        u.id as string,
        { id: u.id, userName: u.userName, displayName: u.displayName, active: u.active },
      ]),
    );
    if (JSON.stringify([...users].sort()) !== JSON.stringify([...this.#users].sort())) {
      problems.push(`users differ: ${users.size} listed, ${this.#users.size} expected`);
      for (const [id, user] of this.#users) {
        if (JSON.stringify(users.get(id)) !== JSON.stringify(user))
          problems.push(`user ${JSON.stringify(user)} listed as ${JSON.stringify(users.get(id))}`);
      }
      for (const id of users.keys()) if (!this.#users.has(id)) problems.push(`unexpected user ${id}`);
    }
    const groups = await listed('Groups');
    if (groups.length !== this.#groups.size)
      problems.push(`${groups.length} groups, ${this.#groups.size} expected`);
    for (const listedGroup of groups) {
      const expected = this.#groups.get(listedGroup.id as string);
      const g = (await scim(this.#conn, 'GET', `/Groups/${listedGroup.id}`)).body as Record<string, unknown>;
      const members = ((g.members as { value: string }[] | undefined) ?? []).map((m) => m.value).sort();
      if (!expected) problems.push(`unexpected group ${g.id}`);
      else if (
        g.displayName !== expected.name ||
        JSON.stringify(members) !== JSON.stringify([...expected.members].sort())
      )
        problems.push(
          `group ${g.id}: ${g.displayName} ${members.length} members, expected ${expected.name} ${expected.members.size}`,
        );
    }
    return problems;
  }
}
