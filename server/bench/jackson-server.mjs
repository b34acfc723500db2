// The open-source peer of the SCIM benchmark: the directory sync of @boxyhq/saml-jackson, installed
// by the bench into a folder of its own (JACKSON_DIR, never the repo's node_modules), behind a bare
// node:http server that does what its hosted app's SCIM route does (pages/api/scim/v2.0/[...directory]
// in the jackson repository): parse the path, the query and the JSON body, hand them to
// directorySyncController.requests.handle() and send back its status and body as JSON.
//
// Also POST /api/v1/dsync (create a directory through the controller, as the hosted admin API does),
// so that the bench sets jackson up through its API and reads the SCIM base path and token from it.
//
// Events: a directory without a webhook makes jackson look the directory up again and log an error
// per event, and one with a webhook but no batch size posts each event synchronously. With
// dsync.webhookBatchSize jackson stores every event in its database (its own durable queue, sent by
// a cron call the bench never makes): the closest match to Roster, which commits an event per change.
// The webhook endpoint is a loopback port that is never contacted.
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

const dir = process.env.JACKSON_DIR;
const url = process.env.DATABASE_URL;
if (!dir || !url) throw new Error('JACKSON_DIR and DATABASE_URL are required');
const require = createRequire(path.join(dir, 'package.json'));
const jackson = require('@boxyhq/saml-jackson');

const quiet = { info() {}, warn() {}, error: (...args) => console.error('[jackson]', ...args) };
const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const externalUrl = `http://127.0.0.1:${server.address().port}`;
const scimPath = '/api/scim/v2.0';

const { directorySyncController } = await jackson.controllers({
  externalUrl,
  samlPath: '/api/oauth/saml',
  scimPath,
  db: { engine: 'sql', type: 'postgres', url },
  noAnalytics: true, // jackson's anonymous usage analytics: no outbound calls
  logger: quiet,
  dsync: { webhookBatchSize: 50 },
});

const json = (res, status, data) => {
  const body = data === undefined ? '' : JSON.stringify(data);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
};

async function handle(req, res, raw) {
  const target = new URL(req.url, externalUrl);
  if (req.method === 'POST' && target.pathname === '/api/v1/dsync') {
    const { data, error } = await directorySyncController.directories.create(JSON.parse(raw));
    return error ? json(res, error.code ?? 500, { error }) : json(res, 201, { data });
  }
  if (!target.pathname.startsWith(`${scimPath}/`)) return json(res, 404, { error: 'not found' });
  const [directoryId, resourceType, resourceId] = target.pathname.slice(scimPath.length + 1).split('/');
  const query = target.searchParams;
  const auth = req.headers.authorization ?? '';
  const { status, data } = await directorySyncController.requests.handle({
    method: req.method,
    body: raw ? JSON.parse(raw) : undefined,
    directoryId,
    resourceId: resourceId || undefined,
    resourceType,
    apiSecret: auth.startsWith('Bearer ') ? auth.slice(7) : null,
    query: {
      count: query.has('count') ? Number.parseInt(query.get('count'), 10) : undefined,
      startIndex: query.has('startIndex') ? Number.parseInt(query.get('startIndex'), 10) : undefined,
      filter: query.get('filter') ?? undefined,
    },
  });
  return json(res, status, data);
}

server.on('request', (req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((error) => {
      console.error('[jackson]', error);
      if (!res.headersSent) json(res, 500, { detail: String(error?.message ?? error) });
    });
  });
});
console.log(`jackson listening on ${externalUrl}`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
