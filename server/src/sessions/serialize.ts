import type { Selectable } from 'kysely';
import type { Schemas } from '../contract.js';
import type { SessionsTable } from '../db/schema.js';
import type { SigningKeyInfo } from './signing-keys.js';

// Session-side resources as the management API shows them, used by the /v1 handlers and for event
// payloads alike (the directory's resources are in directory/serialize.ts).

/** A session as the API shows it; `status` is computed against `now`. */
export function toSession(row: Selectable<SessionsTable>, now: Date): Schemas['Session'] {
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    object: 'session',
    id: row.id,
    user_id: row.user_id,
    organization_id: row.organization_id,
    status: row.revoked_at ? 'revoked' : row.expires_at.getTime() <= now.getTime() ? 'expired' : 'active',
    created_at: row.created_at.toISOString(),
    expires_at: row.expires_at.toISOString(),
    last_refreshed_at: iso(row.last_refreshed_at),
    token_expires_at: iso(row.token_expires_at),
    revoked_at: iso(row.revoked_at),
    revoke_reason: (row.revoke_reason as Schemas['SessionRevokeReason'] | null) ?? null,
  };
}

/** A signing key as the API shows it (never the private part). */
export function toSigningKey(key: SigningKeyInfo): Schemas['SigningKey'] {
  return {
    object: 'signing_key',
    kid: key.kid,
    alg: key.alg,
    state: key.state,
    created_at: key.created_at.toISOString(),
    retired_at: key.retired_at?.toISOString() ?? null,
    expires_at: key.expires_at?.toISOString() ?? null,
  };
}
