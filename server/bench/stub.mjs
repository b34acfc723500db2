// The baseline of the SCIM benchmark: node:http answering each request shape with a fixed body,
// doing no parsing, validation or storage. Roster's figures are reported as a ratio to this.
import http from 'node:http';

const user = JSON.stringify({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  id: 'user_01jdq3x0v8m4w2c7f9k1n5r6t8',
  userName: 'bench@example.com',
  active: true,
  meta: { resourceType: 'User', version: 'W/"1"' },
});
const list = JSON.stringify({
  schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
  totalResults: 0,
  startIndex: 1,
  itemsPerPage: 0,
  Resources: [],
});
const page = JSON.stringify({
  schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
  totalResults: 10000,
  startIndex: 1,
  itemsPerPage: 100,
  Resources: Array.from({ length: 100 }, () => JSON.parse(user)),
});

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const isList = req.method === 'GET' && req.url.includes('/Users?');
    const body =
      req.method === 'PATCH' && req.url.includes('/Groups/')
        ? ''
        : isList
          ? req.url.includes('filter=')
            ? list
            : page
          : user;
    const status = req.method === 'POST' ? 201 : body === '' ? 204 : 200;
    res.writeHead(status, {
      'content-type': 'application/scim+json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
});
server.listen(0, '127.0.0.1', () =>
  console.log(`stub listening on http://127.0.0.1:${server.address().port}`),
);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
