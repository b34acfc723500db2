import { createPrivateKey, type KeyObject, sign as signBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { DB, SigningKeysTable } from '../db/schema.js';
import { newId } from '../ids.js';
import type { KeyRing } from '../key-ring.js';

export type SigningAlg = 'ES256' | 'EdDSA';

/** What a JWKS publishes per key (RFC 7517); `alg` pins each key to one algorithm. */
export interface PublicJwk extends JWK {
  kid: string;
  alg: SigningAlg;
  use: 'sig';
}

export interface SigningKeyInfo {
  kid: string;
  alg: SigningAlg;
  state: SigningKeysTable['state'];
  created_at: Date;
  retired_at: Date | null;
  expires_at: Date | null;
}

interface LoadedKey extends SigningKeyInfo {
  public_jwk: PublicJwk;
  /** Imported on first use (only the active key signs), then kept across reloads. */
  signer?: { privateKey: KeyObject; header: string };
  encryptedPrivateKey: string;
}

export interface SigningKeysOptions {
  ctx: Context;
  keyRing: KeyRing;
  /** Algorithm of keys this process generates. */
  alg: SigningAlg;
  /** How often keys are re-read, so that a rotation by another process is picked up. */
  reloadMs?: number;
}

/**
 * JWT signing keys. Three states:
 * - `next`: published in the JWKS but not signing yet. Verifiers (and any HTTP cache in front of
 *   the JWKS) learn it well before a rotation makes it sign, so the first tokens of a rotation do
 *   not hit a cached JWKS that lacks their key.
 * - `active`: signs every new token; exactly one (a unique index makes concurrent first boots safe).
 * - `retiring`: no longer signs; stays published until every token it signed has expired (its
 *   `expires_at`), then maintenance deletes it.
 *
 * Private keys are stored encrypted with the KeyRing. Every process re-reads the keys every few
 * seconds; a retiring key stays published for the token lifetime plus that delay and a margin, so
 * a process that signs with a key just retired elsewhere never outlives its publication.
 */
export class SigningKeys {
  readonly #ctx: Context;
  readonly #keyRing: KeyRing;
  readonly #alg: SigningAlg;
  readonly #reloadMs: number;
  #keys: LoadedKey[] = [];
  #jwks = '{"keys":[]}';
  #timer: NodeJS.Timeout | undefined;

  constructor(options: SigningKeysOptions) {
    this.#ctx = options.ctx;
    this.#keyRing = options.keyRing;
    this.#alg = options.alg;
    this.#reloadMs = options.reloadMs ?? 5_000;
  }

  /** Generates the first keys if there are none, loads them, and keeps them fresh. */
  async start(): Promise<void> {
    await this.#ctx.db.transaction().execute(async (trx) => {
      await sql`lock table signing_keys in share row exclusive mode`.execute(trx);
      const states = new Set(
        (
          await trx
            .selectFrom('signing_keys')
            .select('state')
            .where('state', 'in', ['active', 'next'])
            .execute()
        ).map((r) => r.state),
      );
      if (!states.has('active')) await this.#insert(trx, 'active', this.#alg);
      if (!states.has('next')) await this.#insert(trx, 'next', this.#alg);
    });
    await this.reload();
    const tick = () => {
      this.#timer = setTimeout(() => {
        void this.reload()
          .catch((error: unknown) => this.#ctx.log.warn({ err: error }, 'reloading signing keys failed'))
          .finally(tick);
      }, this.#reloadMs);
      this.#timer.unref();
    };
    tick();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
  }

  /** How long a retiring key stays published: tokens it signed must all have expired by then. */
  get retirementMs(): number {
    return this.#ctx.settings.sessionTtlMs + 2 * this.#reloadMs + 60_000;
  }

  async reload(): Promise<void> {
    const rows = await this.#ctx.db.selectFrom('signing_keys').selectAll().orderBy('created_at').execute();
    const previous = new Map(this.#keys.map((k) => [k.kid, k]));
    this.#keys = rows.map((row) => ({
      kid: row.kid,
      alg: row.alg as SigningAlg,
      state: row.state,
      created_at: row.created_at,
      retired_at: row.retired_at,
      expires_at: row.expires_at,
      public_jwk: row.public_jwk as unknown as PublicJwk,
      encryptedPrivateKey: row.private_key,
      signer: previous.get(row.kid)?.signer,
    }));
    this.#jwks = JSON.stringify({ keys: this.published().map((k) => k.public_jwk) });
  }

  /** Keys in the JWKS now: next, active, and retiring ones whose tokens may still be valid. */
  published(): LoadedKey[] {
    const now = this.#ctx.now().getTime();
    return this.#keys.filter((k) => k.state !== 'retiring' || (k.expires_at?.getTime() ?? 0) > now);
  }

  /** The JWKS document, serialized once per reload. */
  jwks(): string {
    const now = this.#ctx.now().getTime();
    // A retiring key may have expired since the last reload.
    if (this.#keys.some((k) => k.state === 'retiring' && (k.expires_at?.getTime() ?? 0) <= now)) {
      return JSON.stringify({ keys: this.published().map((k) => k.public_jwk) });
    }
    return this.#jwks;
  }

  list(): SigningKeyInfo[] {
    return this.published().map(({ kid, alg, state, created_at, retired_at, expires_at }) => ({
      kid,
      alg,
      state,
      created_at,
      retired_at,
      expires_at,
    }));
  }

  /**
   * Signs a JWT with the active key: node:crypto with the key object imported once and the
   * protected header encoded once per key, synchronously (no WebCrypto promise or thread-pool hop:
   * this is on the path of every refresh).
   */
  sign(claims: Record<string, unknown>, issuedAt: Date, expiresAt: Date): string {
    const key = this.#keys.find((k) => k.state === 'active');
    if (!key) throw new Error('no active signing key (start() was not called)');
    key.signer ??= {
      privateKey: createPrivateKey({
        key: JSON.parse(this.#keyRing.decrypt(key.encryptedPrivateKey)) as import('node:crypto').JsonWebKey,
        format: 'jwk',
      }),
      header: base64url(JSON.stringify({ alg: key.alg, kid: key.kid, typ: 'JWT' })),
    };
    const iat = Math.floor(issuedAt.getTime() / 1000);
    const payload = base64url(
      JSON.stringify({
        ...claims,
        iss: this.#ctx.settings.publicUrl,
        iat,
        nbf: iat,
        exp: Math.floor(expiresAt.getTime() / 1000),
      }),
    );
    const signingInput = `${key.signer.header}.${payload}`;
    const signature = signBytes(
      key.alg === 'ES256' ? 'sha256' : null,
      Buffer.from(signingInput, 'latin1'),
      key.alg === 'ES256' ? { key: key.signer.privateKey, dsaEncoding: 'ieee-p1363' } : key.signer.privateKey,
    );
    return `${signingInput}.${signature.toString('base64url')}`;
  }

  /**
   * Rotation: the active key retires (published until its tokens have expired) and the `next` key,
   * already published, starts signing; a new `next` is generated. `alg` switches the algorithm (the
   * new active key is then generated, not promoted). `revokePrevious` (a compromised key) removes
   * the old key from the JWKS at once, which invalidates every token it signed: sessions continue
   * at their next refresh.
   */
  async rotate(options: { alg?: SigningAlg; revokePrevious?: boolean } = {}): Promise<SigningKeyInfo> {
    const alg = options.alg ?? this.#alg;
    const now = this.#ctx.now();
    const kid = await this.#ctx.db.transaction().execute(async (trx) => {
      await sql`lock table signing_keys in share row exclusive mode`.execute(trx);
      const current = await trx
        .selectFrom('signing_keys')
        .select(['kid', 'alg', 'state'])
        .where('state', 'in', ['active', 'next'])
        .execute();
      const next = current.find((k) => k.state === 'next');
      await trx
        .updateTable('signing_keys')
        .set({
          state: 'retiring',
          retired_at: now,
          expires_at: options.revokePrevious ? now : new Date(now.getTime() + this.retirementMs),
        })
        .where('state', '=', 'active')
        .execute();
      let activeKid: string;
      if (next && next.alg === alg && !options.revokePrevious) {
        await trx.updateTable('signing_keys').set({ state: 'active' }).where('kid', '=', next.kid).execute();
        activeKid = next.kid;
      } else {
        if (next) await trx.deleteFrom('signing_keys').where('kid', '=', next.kid).execute();
        activeKid = await this.#insert(trx, 'active', alg);
      }
      await this.#insert(trx, 'next', alg);
      return activeKid;
    });
    await this.reload();
    const info = this.list().find((k) => k.kid === kid);
    if (!info) throw new Error('the rotated key is missing');
    return info;
  }

  /** Deletes retired keys whose tokens have all expired (maintenance). */
  async purgeExpired(): Promise<number> {
    const result = await this.#ctx.db
      .deleteFrom('signing_keys')
      .where('state', '=', 'retiring')
      .where('expires_at', '<', this.#ctx.now())
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async #insert(trx: Transaction<DB>, state: 'active' | 'next', alg: SigningAlg): Promise<string> {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    const kid = newId('signingKey');
    const publicJwk: PublicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
    await trx
      .insertInto('signing_keys')
      .values({
        kid,
        alg,
        public_jwk: JSON.stringify(publicJwk),
        private_key: this.#keyRing.encrypt(JSON.stringify(await exportJWK(privateKey))),
        state,
        created_at: this.#ctx.now(),
      })
      .execute();
    return kid;
  }
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
