// The "pg stub" of the SCIM benchmark: node:http doing, per request, the least PostgreSQL work the
// operation needs, through `pg` with Roster's pool size (DATABASE_URL; without it, an embedded
// PGlite in this process, as Roster runs without DATABASE_URL). One statement per request: an
// INSERT … RETURNING for a create, a SELECT by userName for a lookup, an UPDATE for a PATCH or a
// deactivation, a DELETE, a 50-row INSERT for a group PATCH, one SELECT of 100 rows with the count for
// a page. No validation, no events, no auth: the floor a SCIM server on this database can reach, so
// that "Roster / pg stub" compares a committed write with a committed write.
import http from 'node:http';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';

async function open() {
  if (process.env.DATABASE_URL) {
    const pg = (await import('pg')).default;
    const pool = new pg.Pool({
      connectionString: process.env.DATABASE_URL,
      max: Number(process.env.POOL_SIZE ?? 10),
    });
    return { query: (text, params) => pool.query(text, params), close: () => pool.end() };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const db = new PGlite(process.env.PGLITE_DIR);
  return { query: (text, params) => db.query(text, params), close: () => db.close() };
}

const db = await open();
await db.query(`create table if not exists users (
  id uuid primary key default gen_random_uuid(),
  user_name text not null unique,
  display_name text,
  active boolean not null default true,
  attributes jsonb not null
)`);
await db.query(
  'create table if not exists groups (id uuid primary key default gen_random_uuid(), display_name text not null)',
);
await db.query(`create table if not exists group_members (
  group_id uuid not null references groups on delete cascade,
  user_id uuid not null references users on delete cascade,
  primary key (group_id, user_id)
)`);

const render = (row) => ({
  ...row.attributes,
  schemas: [USER],
  id: row.id,
  userName: row.user_name,
  displayName: row.display_name,
  active: row.active,
});
const list = (total, startIndex, rows) => ({
  schemas: [LIST],
  totalResults: total,
  startIndex,
  itemsPerPage: rows.length,
  Resources: rows.map(render),
});

async function handle(method, url, body) {
  const [, resource, id] = /^\/scim\/v2\/(Users|Groups)(?:\/([^/?]+))?/.exec(url.pathname) ?? [];
  if (resource === 'Users' && !id && method === 'POST') {
    const { rows } = await db.query(
      'insert into users (user_name, display_name, active, attributes) values ($1, $2, $3, $4) returning *',
      [body.userName, body.displayName ?? null, body.active !== false, body],
    );
    return [201, render(rows[0])];
  }
  if (resource === 'Users' && !id && method === 'GET') {
    const filter = url.searchParams.get('filter');
    if (filter) {
      const userName = /userName eq "([^"]*)"/.exec(filter)?.[1] ?? '';
      const { rows } = await db.query('select * from users where user_name = $1', [userName]);
      return [200, list(rows.length, 1, rows)];
    }
    const startIndex = Number(url.searchParams.get('startIndex') ?? 1);
    const count = Number(url.searchParams.get('count') ?? 100);
    const { rows } = await db.query(
      `select u.*, c.total from (select count(*)::int as total from users) c
       left join lateral (select * from users order by id offset $1 limit $2) u on true`,
      [startIndex - 1, count],
    );
    const total = rows[0]?.total ?? 0;
    return [
      200,
      list(
        total,
        startIndex,
        rows.filter((row) => row.id !== null),
      ),
    ];
  }
  if (resource === 'Users' && id && method === 'GET') {
    const { rows } = await db.query('select * from users where id = $1', [id]);
    return rows[0] ? [200, render(rows[0])] : [404, { detail: 'not found' }];
  }
  if (resource === 'Users' && id && method === 'PATCH') {
    const op = body.Operations[0];
    const { rows } =
      op.path === 'active'
        ? await db.query('update users set active = $2 where id = $1 returning *', [
            id,
            String(op.value).toLowerCase() === 'true',
          ])
        : await db.query('update users set display_name = $2 where id = $1 returning *', [id, op.value]);
    return rows[0] ? [200, render(rows[0])] : [404, { detail: 'not found' }];
  }
  if (resource === 'Users' && id && method === 'DELETE') {
    const { rows } = await db.query('delete from users where id = $1 returning id', [id]);
    return rows[0] ? [204, undefined] : [404, { detail: 'not found' }];
  }
  if (resource === 'Groups' && !id && method === 'POST') {
    const { rows } = await db.query('insert into groups (display_name) values ($1) returning id', [
      body.displayName,
    ]);
    return [
      201,
      {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
        id: rows[0].id,
        displayName: body.displayName,
      },
    ];
  }
  if (resource === 'Groups' && id && method === 'PATCH') {
    const members = body.Operations.flatMap((op) => op.value.map((member) => member.value));
    await db.query(
      'insert into group_members (group_id, user_id) select $1, unnest($2::uuid[]) on conflict do nothing',
      [id, members],
    );
    return [204, undefined];
  }
  if (resource === 'Groups' && id && method === 'GET') {
    const { rows } = await db.query(
      'select g.id, g.display_name, (select count(*)::int from group_members m where m.group_id = g.id) as members from groups g where g.id = $1',
      [id],
    );
    if (!rows[0]) return [404, { detail: 'not found' }];
    const members = Array.from({ length: rows[0].members }, () => ({}));
    return [200, { id: rows[0].id, displayName: rows[0].display_name, members }];
  }
  return [404, { detail: 'not found' }];
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8');
    handle(req.method, new URL(req.url, 'http://stub'), raw ? JSON.parse(raw) : undefined)
      .catch((error) => [500, { detail: String(error?.message ?? error) }])
      .then(([status, data]) => {
        const body = data === undefined ? '' : JSON.stringify(data);
        res.writeHead(status, {
          'content-type': 'application/scim+json; charset=utf-8',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
      });
  });
});
server.listen(0, '127.0.0.1', () =>
  console.log(`pg stub listening on http://127.0.0.1:${server.address().port}`),
);
process.on('SIGTERM', () => server.close(() => db.close().then(() => process.exit(0))));
