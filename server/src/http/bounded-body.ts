import type { IncomingMessage } from 'node:http';

/**
 * Why a request body was not read, for each protocol to answer in its own error format (SCIM's
 * Error schema, /v1's error body): `too_large` past the limit (by its Content-Length, or as it
 * streamed), `encoding` compressed (`value`: the Content-Encoding), `charset` a charset other
 * than UTF-8 (`value`: the charset), `aborted` not received completely.
 */
export type BodyProblem =
  | { reason: 'too_large' }
  | { reason: 'encoding'; value: string }
  | { reason: 'charset'; value: string }
  | { reason: 'aborted' };

export type BoundedBody = { ok: true; bytes: Buffer } | ({ ok: false } & BodyProblem);

/**
 * Reads a request body of at most `limit` bytes, uncompressed, in UTF-8 if it names a charset.
 * Never rejects: the outcome says why there is no body. A body over the limit is not buffered
 * past it (what follows is drained and dropped); its connection is the caller's to close.
 */
export function readBoundedBody(req: IncomingMessage, limit: number): Promise<BoundedBody> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.resolve({ ok: false, reason: 'too_large' });
  }
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    return Promise.resolve({ ok: false, reason: 'encoding', value: encoding });
  }
  const charset = /charset\s*=\s*"?([\w-]+)/i.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return Promise.resolve({ ok: false, reason: 'charset', value: charset });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (outcome: BoundedBody) => {
      if (done) return;
      done = true;
      resolve(outcome);
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) finish({ ok: false, reason: 'too_large' });
      else chunks.push(chunk);
    });
    req.on('error', () => finish({ ok: false, reason: 'aborted' }));
    req.on('end', () =>
      finish({ ok: true, bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) }),
    );
  });
}
