import { canonicalJson } from '@roster/openapi/digest';
import type { components } from './contract.js';

type SnapshotMember = components['schemas']['SnapshotMember'];

/**
 * The digest of a directory snapshot, as `GET /v1/organizations/{id}/snapshot` answers it:
 * `sha256:` + the hex SHA-256 of each member's canonical JSON followed by `\n`, in `membership_id`
 * order. Compute it over your own mirror (members with the fields of `SnapshotMember`) and compare
 * it with the server's to know whether the mirror is right without downloading the snapshot.
 * Uses WebCrypto: Node 20+, browsers, edge runtimes, Bun and Deno.
 */
export async function snapshotDigest(members: readonly SnapshotMember[]): Promise<string> {
  const sorted = [...members].sort((a, b) =>
    a.membership_id < b.membership_id ? -1 : a.membership_id > b.membership_id ? 1 : 0,
  );
  const text = sorted.map((member) => `${canonicalJson(member)}\n`).join('');
  const hash = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  const hex = [...new Uint8Array(hash)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return `sha256:${hex}`;
}
