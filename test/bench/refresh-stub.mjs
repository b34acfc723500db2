// The machine's limit for the work of a refresh, as the sessions benchmark measures it: a bare
// node:http server doing what a refresh cannot avoid, and nothing else. Per request it reads the
// JSON body, runs one prepared `UPDATE … RETURNING` of a session row through `pg`, signs a JWT of
// that row with one ES256 signature (node:crypto, key object made once), and answers JSON. No
// refresh-token lookup, rotation, checks, rate limit, logging or validation: Roster's ratio to it
// is what all of those cost on top of the unavoidable work, on the same cores at the same time.
//
// The body's `refresh_token` is taken as a session id, and answered back as the next one, so the
// benchmark's refresh loop drives this server unchanged. Arguments: database URL, pool size, and
// `off` to commit each UPDATE without waiting for the WAL flush (as Roster's rotations do by
// default, ROSTER_REFRESH_SYNCHRONOUS_COMMIT) or `on` (the default) to wait for it.
import { generateKeyPairSync, sign } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';

const [databaseUrl, poolSize = '10', synchronousCommit = 'on'] = process.argv.slice(2);
const unflushed = synchronousCommit === 'off';
const pool = new pg.Pool({ connectionString: databaseUrl, max: Number(poolSize) });
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'sk_stub', typ: 'JWT' })).toString(
  'base64url',
);
const ttlSeconds = 60;

function signToken(session) {
  const iat = Math.floor(Date.now() / 1000);
  const payload = Buffer.from(
    JSON.stringify({
      sub: session.user_id,
      sid: session.id,
      aud: session.organization_id,
      org_id: session.organization_id,
      org_role: 'member',
      org_permissions: [],
      iss: 'http://127.0.0.1',
      iat,
      nbf: iat,
      exp: iat + ttlSeconds,
    }),
  ).toString('base64url');
  const input = `${header}.${payload}`;
  const signature = sign('sha256', Buffer.from(input, 'latin1'), {
    key: privateKey,
    dsaEncoding: 'ieee-p1363',
  });
  return `${input}.${signature.toString('base64url')}`;
}

function answer(res, status, body) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const { refresh_token: id } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    pool
      .query({
        name: 'stub_refresh',
        text: unflushed
          ? "update sessions set last_refreshed_at = now() where id = $1 returning *, set_config('synchronous_commit', 'off', true)"
          : 'update sessions set last_refreshed_at = now() where id = $1 returning *',
        values: [id],
      })
      .then(({ rows: [session] }) => {
        if (!session) return answer(res, 401, { error: { code: 'invalid_refresh_token' } });
        answer(res, 200, {
          object: 'session_tokens',
          id: session.id,
          user_id: session.user_id,
          organization_id: session.organization_id,
          token: signToken(session),
          expires_at: new Date(Date.now() + ttlSeconds * 1000).toISOString(),
          refresh_token: session.id,
          session_expires_at: session.expires_at.toISOString(),
        });
      })
      .catch((error) => answer(res, 500, { error: { code: 'internal', message: String(error) } }));
  });
});
server.listen(0, '127.0.0.1', () =>
  console.log(`refresh stub listening on http://127.0.0.1:${server.address().port}`),
);
process.on('SIGTERM', () => server.close(() => pool.end().then(() => process.exit(0))));
