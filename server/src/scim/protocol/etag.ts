import { ScimError } from './error.js';

/**
 * `If-Match` (RFC 7644 §3.14, RFC 7232 §3.1): `*` or a list of entity tags, weak or strong,
 * compared by their opaque value. A mismatch is 412 Precondition Failed.
 */
export function checkIfMatch(header: string | undefined, version: number): void {
  if (header === undefined || header.trim() === '' || header.trim() === '*') return;
  const tags = header.split(',').map((tag) =>
    tag
      .trim()
      .replace(/^W\//i, '')
      .replace(/^"(.*)"$/, '$1'),
  );
  if (!tags.includes(String(version))) {
    throw new ScimError(
      412,
      undefined,
      `the resource has changed: its version is W/"${version}", not ${header.trim()}`,
    );
  }
}
