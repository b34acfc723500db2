import { makeCompany } from './directory.js';
import type { DirectoryUser, Member, Profile } from './profiles.js';
import type { Json, ScimClient } from './scim-client.js';

/** A step the simulated IdP cannot take (unknown user or group, bad replay file). */
export class SimulatorError extends Error {
  override readonly name = 'SimulatorError';
}

/** Progress of a long run (a progress bar on a terminal, nothing in tests). */
export interface Progress {
  start(total: number, label: string): void;
  increment(): void;
  stop(): void;
}

export const noProgress: Progress = { start() {}, increment() {}, stop() {} };

/** One step of a scripted day (`replay`). */
export type Step =
  | { do: 'seed'; users: number; groups: number; seed?: number; domain?: string }
  | { do: 'hire'; user: DirectoryUser; groups?: string[] }
  | { do: 'deactivate' | 'reactivate' | 'delete'; user: string }
  | { do: 'move'; user: string; group: string }
  | { do: 'create-group'; group: string }
  | { do: 'rename-group'; group: string; to: string }
  | { do: 'delete-group'; group: string };

export interface SeedResult {
  created: number;
  updated: number;
  groups: number;
}

/** Runs `n` async jobs with at most `limit` in flight; the first failure stops the rest. */
async function pool<T>(items: readonly T[], limit: number, job: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await job(item);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

export class Simulator {
  constructor(
    readonly scim: ScimClient,
    readonly profile: Profile,
    readonly options: { concurrency?: number; progress?: Progress; log?: (line: string) => void } = {},
  ) {}

  get #progress() {
    return this.options.progress ?? noProgress;
  }

  #log(line: string) {
    this.options.log?.(line);
  }

  async #user(userName: string): Promise<Json> {
    const user = await this.profile.findUser(this.scim, userName);
    if (!user) {
      throw new SimulatorError(
        `no user "${userName}" on this connection (names are userNames, e.g. from seed)`,
      );
    }
    return user;
  }

  async #group(displayName: string): Promise<Json> {
    const group = await this.profile.findGroup(this.scim, displayName);
    if (!group) throw new SimulatorError(`no group "${displayName}" on this connection`);
    return group;
  }

  /** Creates (or, when its userName exists, updates) a user: the IdP's assignment. */
  async hire(user: DirectoryUser): Promise<{ id: string; created: boolean }> {
    const existing = await this.profile.findUser(this.scim, user.userName);
    if (existing) {
      await this.profile.updateUser(this.scim, existing, user);
      return { id: existing.id, created: false };
    }
    const created = await this.profile.createUser(this.scim, user);
    return { id: created.id, created: true };
  }

  /** Pushes a company of `users` people and `groups` groups; running it again updates them. */
  async seed(options: {
    users: number;
    groups: number;
    seed?: number;
    domain?: string;
  }): Promise<SeedResult> {
    const company = makeCompany({
      users: options.users,
      groups: options.groups,
      seed: options.seed ?? 1,
      domain: options.domain ?? 'acme.example',
    });
    const ids = new Map<string, string>();
    const concurrency = this.options.concurrency ?? 4;
    const managed = company.users.filter((u) => u.managerUserName);
    this.#progress.start(company.users.length + managed.length + company.groups.size, 'seed');
    let created = 0;
    try {
      await pool(company.users, concurrency, async (user) => {
        const result = await this.hire(user);
        ids.set(user.userName, result.id);
        if (result.created) created++;
        this.#progress.increment();
      });
      // Managers once everyone exists (Entra writes reference attributes in a second pass too).
      await pool(managed, concurrency, async (user) => {
        await this.profile.setManager(this.scim, ids.get(user.userName)!, ids.get(user.managerUserName!)!);
        this.#progress.increment();
      });
      await pool([...company.groups], Math.min(concurrency, 2), async ([name, userNames]) => {
        const group =
          (await this.profile.findGroup(this.scim, name)) ??
          (await this.profile.createGroup(this.scim, name));
        const members: Member[] = userNames.map((userName) => ({
          id: ids.get(userName)!,
          display: userName,
        }));
        await this.profile.changeMembers(this.scim, { id: group.id, displayName: name }, members, []);
        this.#progress.increment();
      });
    } finally {
      this.#progress.stop();
    }
    const result = { created, updated: company.users.length - created, groups: company.groups.size };
    this.#log(
      `seeded ${company.users.length} users (${result.created} created, ${result.updated} updated) and ${result.groups} groups`,
    );
    return result;
  }

  async setActive(userName: string, active: boolean): Promise<void> {
    const user = await this.#user(userName);
    await this.profile.setActive(this.scim, user.id, active);
    this.#log(`${active ? 'reactivated' : 'deactivated'} ${userName}`);
  }

  /**
   * Deactivates the first `users` people of the seeded company (same `seed` and `domain` as
   * `seed`), `concurrency` at a time: what a mistaken assignment rule or a deleted group makes the
   * IdP send. A request the server holds (503 + Retry-After) is retried as the client's options
   * allow; when it gives up, the error says how many went through first.
   */
  async deactivateMany(options: { users: number; seed?: number; domain?: string }): Promise<number> {
    const company = makeCompany({
      users: options.users,
      groups: 0,
      seed: options.seed ?? 1,
      domain: options.domain ?? 'acme.example',
    });
    let done = 0;
    this.#progress.start(company.users.length, 'deactivate');
    try {
      await pool(company.users, this.options.concurrency ?? 4, async (person) => {
        const user = await this.#user(person.userName);
        await this.profile.setActive(this.scim, user.id, false);
        done++;
        this.#progress.increment();
      });
    } catch (error) {
      (error as Error).message =
        `deactivated ${done} of ${company.users.length} before this: ${(error as Error).message}`;
      throw error;
    } finally {
      this.#progress.stop();
    }
    this.#log(`deactivated ${done} users`);
    return done;
  }

  async deleteUser(userName: string): Promise<void> {
    if (!this.profile.deletesUsers) {
      throw new SimulatorError(
        `${this.profile.name} never deletes users over SCIM (it deactivates them): use deactivate, or --profile entra`,
      );
    }
    const user = await this.#user(userName);
    await this.profile.deleteUser(this.scim, user.id);
    this.#log(`deleted ${userName}`);
  }

  /** Moves a user out of every group they are in, into `groupName` (a department change). */
  async move(userName: string, groupName: string): Promise<void> {
    const found = await this.#user(userName);
    const target = await this.#group(groupName);
    const user = await this.scim.request('GET', `/Users/${found.id}`);
    const current = ((user.groups ?? []) as { value: string; display?: string }[]).filter(
      (g) => g.value !== target.id,
    );
    for (const group of current) {
      await this.profile.changeMembers(
        this.scim,
        { id: group.value, displayName: group.display ?? group.value },
        [],
        [found.id],
      );
    }
    await this.profile.changeMembers(
      this.scim,
      { id: target.id, displayName: target.displayName },
      [{ id: found.id, display: userName }],
      [],
    );
    this.#log(
      `moved ${userName} to ${groupName}${current.length ? ` (out of ${current.map((g) => g.display).join(', ')})` : ''}`,
    );
  }

  async createGroup(name: string): Promise<void> {
    if (await this.profile.findGroup(this.scim, name)) return;
    await this.profile.createGroup(this.scim, name);
    this.#log(`created group ${name}`);
  }

  async renameGroup(from: string, to: string): Promise<void> {
    const group = await this.#group(from);
    await this.profile.renameGroup(this.scim, group.id, to);
    this.#log(`renamed group ${from} to ${to}`);
  }

  async deleteGroup(name: string): Promise<void> {
    const group = await this.#group(name);
    await this.profile.deleteGroup(this.scim, group.id);
    this.#log(`deleted group ${name}`);
  }

  /** Runs a scripted day, step by step, stopping at the first step the server refuses. */
  async replay(steps: unknown): Promise<number> {
    const valid = parseSteps(steps);
    this.#progress.start(valid.length, 'replay');
    try {
      for (const [index, step] of valid.entries()) {
        try {
          await this.#step(step);
        } catch (error) {
          (error as Error).message = `step ${index + 1} (${step.do}): ${(error as Error).message}`;
          throw error;
        }
        this.#progress.increment();
      }
    } finally {
      this.#progress.stop();
    }
    return valid.length;
  }

  async #step(step: Step): Promise<void> {
    switch (step.do) {
      case 'seed':
        await this.seed(step);
        return;
      case 'hire': {
        const { id } = await this.hire(step.user);
        this.#log(`hired ${step.user.userName}`);
        for (const name of step.groups ?? []) {
          const group = await this.#group(name);
          await this.profile.changeMembers(
            this.scim,
            { id: group.id, displayName: name },
            [{ id, display: step.user.userName }],
            [],
          );
        }
        return;
      }
      case 'deactivate':
      case 'reactivate':
        await this.setActive(step.user, step.do === 'reactivate');
        return;
      case 'delete':
        await this.deleteUser(step.user);
        return;
      case 'move':
        await this.move(step.user, step.group);
        return;
      case 'create-group':
        await this.createGroup(step.group);
        return;
      case 'rename-group':
        await this.renameGroup(step.group, step.to);
        return;
      case 'delete-group':
        await this.deleteGroup(step.group);
        return;
    }
  }
}

/** Checks a replay file's steps before any request is sent, naming the first bad one. */
export function parseSteps(input: unknown): Step[] {
  if (!Array.isArray(input)) throw new SimulatorError('a replay file is a JSON array of steps');
  const str = (v: unknown) => typeof v === 'string' && v.length > 0;
  return input.map((raw, i) => {
    const step = raw as Record<string, unknown>;
    const bad = (why: string) => new SimulatorError(`step ${i + 1}: ${why} (got ${JSON.stringify(raw)})`);
    if (typeof step !== 'object' || step === null || !str(step.do)) throw bad('each step needs "do"');
    switch (step.do) {
      case 'seed':
        if (!Number.isInteger(step.users) || !Number.isInteger(step.groups))
          throw bad('seed needs integer users and groups');
        break;
      case 'hire': {
        const user = step.user as Record<string, unknown> | undefined;
        if (!user || !['userName', 'givenName', 'familyName', 'email'].every((k) => str(user[k]))) {
          throw bad('hire needs user.userName, givenName, familyName and email');
        }
        break;
      }
      case 'deactivate':
      case 'reactivate':
      case 'delete':
        if (!str(step.user)) throw bad(`${step.do} needs "user" (a userName)`);
        break;
      case 'move':
        if (!str(step.user) || !str(step.group)) throw bad('move needs "user" and "group"');
        break;
      case 'create-group':
      case 'delete-group':
        if (!str(step.group)) throw bad(`${step.do} needs "group"`);
        break;
      case 'rename-group':
        if (!str(step.group) || !str(step.to)) throw bad('rename-group needs "group" and "to"');
        break;
      default:
        throw bad(`unknown step "${String(step.do)}"`);
    }
    return step as Step;
  });
}
