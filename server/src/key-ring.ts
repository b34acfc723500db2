import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import type { Database } from './db/database.js';
import type { Logger } from './log.js';

/**
 * Encryption at rest of the secrets Roster must be able to read back (JWT signing keys, webhook
 * signing secrets): AES-256-GCM, a random 96-bit IV per value, the version in the stored text.
 *
 * The key comes from ROSTER_ENCRYPTION_KEY; without it, the embedded database generates one into
 * its data directory (a file beside, not inside, the database files, mode 0600); on PostgreSQL
 * without it, one is generated and kept in the database itself, with a warning at every start:
 * a stolen database would then carry its own key.
 */
export class KeyRing {
  readonly #key: Buffer;
  readonly #macKeys = new Map<string, KeyObject>();

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('the encryption key must be 32 bytes');
    this.#key = key;
  }

  encrypt(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `v1:${Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString('base64')}`;
  }

  decrypt(stored: string): string {
    if (!stored.startsWith('v1:')) throw new Error('unknown encrypted value format');
    const raw = Buffer.from(stored.slice(3), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }

  /**
   * A keyed digest (HMAC-SHA-256) under a subkey derived for `purpose` (HKDF), never the
   * encryption key itself: values that must be re-computable from a secret the client presents,
   * yet unforgeable from what the database holds (a refresh token's successor). The subkey is kept
   * as a KeyObject: an HMAC keyed by one skips importing the key bytes (a refresh makes three).
   */
  mac(purpose: string, data: string): Buffer {
    let key = this.#macKeys.get(purpose);
    if (!key) {
      key = createSecretKey(
        Buffer.from(hkdfSync('sha256', this.#key, Buffer.alloc(0), `roster mac: ${purpose}`, 32)),
      );
      this.#macKeys.set(purpose, key);
    }
    return createHmac('sha256', key).update(data, 'utf8').digest();
  }
}

export async function loadKeyRing(options: {
  configuredKey: string | undefined;
  database: Database;
  dataDir: string | undefined;
  log: Logger;
}): Promise<KeyRing> {
  if (options.configuredKey) return new KeyRing(Buffer.from(options.configuredKey, 'base64'));
  if (options.database.kind === 'pglite' && options.dataDir) {
    const file = path.resolve(options.dataDir, 'encryption.key');
    if (!existsSync(file))
      writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
    return new KeyRing(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64'));
  }
  // PostgreSQL (or an in-memory database) without a configured key: one key per database, shared by
  // every process, stored with the data it protects.
  const generated = randomBytes(32).toString('base64');
  await sql`insert into instance_settings (name, value) values ('encryption_key', ${generated})
    on conflict (name) do nothing`.execute(options.database.db);
  const { rows } = await sql<{
    value: string;
  }>`select value from instance_settings where name = 'encryption_key'`.execute(options.database.db);
  if (options.database.kind === 'postgres') {
    options.log.warn(
      'ROSTER_ENCRYPTION_KEY is not set: signing keys and webhook secrets are encrypted with a key stored in the database itself. Set ROSTER_ENCRYPTION_KEY (openssl rand -base64 32) so that a database leak does not reveal them.',
    );
  }
  return new KeyRing(Buffer.from(rows[0]!.value, 'base64'));
}
