import type { SyncLogLine } from '../../portal/queries.js';

/** A failed SCIM request in words an IT admin can act on (the sync log keeps the technical detail). */
export function explainFailure(
  line: Pick<SyncLogLine, 'status' | 'scim_type' | 'detail' | 'method'>,
  idp: string,
): string {
  const detail = line.detail ? ` (${line.detail})` : '';
  switch (true) {
    case line.status === 401:
      return `The token in ${idp} is wrong, or it was replaced or revoked here. Paste the current token into ${idp}.`;
    case line.status === 403:
      return `${idp} is not allowed to do this.${detail}`;
    case line.status === 404 && line.method === 'GET':
      return `${idp} looked for a user or group that is not here yet; that is normal before it creates one.`;
    case line.status === 404:
      return `${idp} tried to change a user or group that is not here (it may have been deleted).`;
    case line.status === 409:
      return `${idp} tried to create a user or group that already exists${detail}. It usually matches the existing one on its next run.`;
    case line.status === 413:
      return `${idp} sent too much in one request.`;
    case line.status === 429:
      return `${idp} sent requests faster than allowed; it retries by itself.`;
    case line.status >= 500:
      return 'Something failed on our side. Share the request id with the app’s support.';
    default:
      return `${idp} sent something that could not be accepted${detail}.`;
  }
}
