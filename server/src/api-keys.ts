import type { Kysely } from 'kysely';
import type { DB } from './db/schema.js';
import { digestsEqual, hashSecret, newId, newSecret } from './ids.js';

/** Checks management API keys against their SHA-256 digests, in constant time. */
export class ApiKeyVerifier {
  readonly #digests: readonly string[];

  constructor(digests: readonly string[]) {
    this.#digests = digests;
  }

  verify(presented: string): boolean {
    const digest = hashSecret(presented);
    let ok = false;
    // Compare against every accepted digest (no early exit), so timing says nothing about which.
    for (const accepted of this.#digests) ok = digestsEqual(accepted, digest) || ok;
    return ok;
  }
}

export interface SecretKeySetup {
  verifier: ApiKeyVerifier;
  /** Set only on the boot that generated the key: print it once, it is not stored in the clear. */
  generatedKey?: string;
}

/**
 * The management key is `ROSTER_SECRET_KEY` when set (and then it is the only key accepted).
 * Otherwise a key is generated on first boot, stored as a digest, and returned once for printing;
 * later boots accept the stored digest. A unique index makes concurrent first boots agree on one.
 */
export async function setUpSecretKey(
  db: Kysely<DB>,
  configuredKey: string | undefined,
): Promise<SecretKeySetup> {
  if (configuredKey) return { verifier: new ApiKeyVerifier([hashSecret(configuredKey)]) };

  const live = () =>
    db
      .selectFrom('api_keys')
      .select('key_hash')
      .where('source', '=', 'generated')
      .where('revoked_at', 'is', null)
      .execute();
  let rows = await live();
  let generatedKey: string | undefined;
  if (rows.length === 0) {
    const key = newSecret('secretKey');
    const inserted = await db
      .insertInto('api_keys')
      .values({ id: newId('apiKey'), key_hash: hashSecret(key), source: 'generated' })
      .onConflict((oc) => oc.doNothing())
      .returning('id')
      .executeTakeFirst();
    if (inserted) generatedKey = key;
    rows = await live();
  }
  const verifier = new ApiKeyVerifier(rows.map((row) => row.key_hash));
  return generatedKey ? { verifier, generatedKey } : { verifier };
}
