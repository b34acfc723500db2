import type { DirectoryUser } from './profiles.js';

/**
 * A made-up but plausible company: people with names, departments of realistic sizes, titles, and
 * managers (each department's head reports to the CEO). The same seed gives the same company, so
 * `seed` can be run again (it then updates instead of creating).
 */

const GIVEN = [
  'Ada',
  'Alan',
  'Amara',
  'Ana',
  'Arjun',
  'Beatriz',
  'Ben',
  'Chen',
  'Chloe',
  'Dan',
  'Dmitri',
  'Elena',
  'Emeka',
  'Fatima',
  'Finn',
  'Grace',
  'Hana',
  'Hugo',
  'Ines',
  'Ivan',
  'Jamal',
  'Jin',
  'Julia',
  'Kai',
  'Kofi',
  'Lars',
  'Layla',
  'Leo',
  'Lucia',
  'Maya',
  'Mei',
  'Mateo',
  'Nadia',
  'Noah',
  'Olga',
  'Omar',
  'Priya',
  'Rafael',
  'Rosa',
  'Sami',
  'Sara',
  'Tariq',
  'Tomas',
  'Uma',
  'Vera',
  'Wei',
  'Yusuf',
  'Zoe',
];
const FAMILY = [
  'Abe',
  'Adeyemi',
  'Alvarez',
  'Berg',
  'Brown',
  'Chowdhury',
  'Costa',
  'Dubois',
  'Eriksen',
  'Fischer',
  'Garcia',
  'Haddad',
  'Ito',
  'Jensen',
  'Kim',
  'Kowalski',
  'Lopez',
  'Mensah',
  'Moreau',
  'Nakamura',
  'Novak',
  'Okafor',
  'Olsen',
  'Patel',
  'Quinn',
  'Rossi',
  'Santos',
  'Schmidt',
  'Silva',
  'Singh',
  'Tanaka',
  'Torres',
  'Usman',
  'Varga',
  'Wang',
  'Weber',
  'Yilmaz',
  'Zhang',
];

/** Departments and their share of the headcount; the first G of them become groups. */
export const DEPARTMENTS: readonly { name: string; share: number; titles: string[] }[] = [
  { name: 'Engineering', share: 0.3, titles: ['Software Engineer', 'Senior Engineer', 'Staff Engineer'] },
  { name: 'Sales', share: 0.18, titles: ['Account Executive', 'Sales Engineer', 'SDR'] },
  { name: 'Finance', share: 0.08, titles: ['Accountant', 'Financial Analyst', 'Controller'] },
  { name: 'Support', share: 0.14, titles: ['Support Engineer', 'Support Specialist'] },
  { name: 'Marketing', share: 0.1, titles: ['Marketing Manager', 'Content Writer', 'Designer'] },
  { name: 'People', share: 0.06, titles: ['Recruiter', 'People Partner'] },
  { name: 'Operations', share: 0.09, titles: ['Operations Analyst', 'IT Administrator'] },
  { name: 'Legal', share: 0.05, titles: ['Counsel', 'Paralegal'] },
];
const EXTRA_GROUPS = [
  'Managers',
  'All Staff',
  'Project Atlas',
  'Project Borealis',
  'On-call',
  'Office Lisbon',
];

export interface Company {
  users: (DirectoryUser & { managerUserName?: string })[];
  /** Group name -> userNames. */
  groups: Map<string, string[]>;
}

/** mulberry32: small, seedable, good enough for made-up names. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeCompany(options: {
  users: number;
  groups: number;
  seed: number;
  domain: string;
}): Company {
  const rand = random(options.seed);
  const pick = <T>(list: readonly T[]) => list[Math.floor(rand() * list.length)]!;
  const taken = new Set<string>();
  const users: Company['users'] = [];
  const heads = new Map<string, string>();

  for (let i = 0; i < options.users; i++) {
    const givenName = pick(GIVEN);
    const familyName = pick(FAMILY);
    const base = `${givenName}.${familyName}`.toLowerCase();
    let local = base;
    for (let n = 2; taken.has(local); n++) local = `${base}${n}`;
    taken.add(local);
    const email = `${local}@${options.domain}`;
    // The first person is the CEO; then each department gets its head before anyone else.
    let department: (typeof DEPARTMENTS)[number];
    if (i >= 1 && i <= DEPARTMENTS.length) department = DEPARTMENTS[i - 1]!;
    else {
      const r = rand();
      let cumulative = 0;
      department =
        DEPARTMENTS.find((d) => {
          cumulative += d.share;
          return r < cumulative;
        }) ?? DEPARTMENTS[0]!;
    }
    const user: Company['users'][number] = {
      userName: email,
      email,
      givenName,
      familyName,
      employeeNumber: String(1000 + i),
    };
    if (i === 0) {
      user.title = 'Chief Executive Officer';
      user.department = 'Executive';
    } else {
      user.department = department.name;
      if (!heads.has(department.name)) {
        heads.set(department.name, email);
        user.title = `Head of ${department.name}`;
        user.managerUserName = users[0]!.userName;
      } else {
        user.title = pick(department.titles);
        user.managerUserName = heads.get(department.name);
      }
    }
    users.push(user);
  }

  const groups = new Map<string, string[]>();
  const names = [...DEPARTMENTS.map((d) => d.name), ...EXTRA_GROUPS].slice(0, options.groups);
  for (const name of names) {
    let members: string[];
    if (name === 'Managers') members = [...heads.values(), ...(users[0] ? [users[0].userName] : [])];
    else if (name === 'All Staff') members = users.map((u) => u.userName);
    else if (DEPARTMENTS.some((d) => d.name === name)) {
      members = users.filter((u) => u.department === name).map((u) => u.userName);
    } else {
      const share = 0.1 + rand() * 0.2;
      members = users.filter(() => rand() < share).map((u) => u.userName);
    }
    groups.set(name, members);
  }
  // Beyond the named groups: numbered teams, so any --groups works.
  for (let n = names.length + 1; groups.size < options.groups; n++) {
    groups.set(
      `Team ${n}`,
      users.filter(() => rand() < 0.15).map((u) => u.userName),
    );
  }
  return { users, groups };
}
