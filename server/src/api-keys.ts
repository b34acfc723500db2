import type { Kysely } from 'kysely';
import type { Context } from './context.js';
import type { Schemas } from './contract.js';
import type { ApiKeyRow, DB } from './db/schema.js';
import { ApiError, notFound } from './errors.js';
import { digestsEqual, hashSecret, newId, newSecret, SECRET_PREFIXES, secretHint } from './ids.js';
import { decodeCursor, type Page, toPage } from './pagination.js';

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

export type ApiKeyScope = Schemas['ApiKeyScope'];

/**
 * Who a /v1 request acts for: the root key (`ROSTER_SECRET_KEY` or the generated key), which may do
 * everything, or an API key, limited by its scopes and, when it has one, to its organization.
 */
export interface Principal {
  /** `root`, or the API key's id (idempotency keys are scoped by it). */
  readonly id: string;
  readonly root: boolean;
  /** The only organization this principal reaches; `null` reaches every organization. */
  readonly organizationId: string | null;
  readonly scopes: ReadonlySet<ApiKeyScope>;
}

export const ROOT: Principal = {
  id: 'root',
  root: true,
  organizationId: null,
  scopes: new Set<ApiKeyScope>(['read', 'write', 'events:read', 'sessions:write', 'api_keys:write']),
};

/**
 * Authenticates a bearer secret: the root key first (digests in memory, constant time), then an API
 * key by the digest of what was presented. The lookup is by a SHA-256 digest of a 256-bit random
 * secret, so the index search reveals nothing usable about stored keys. Not cached: a revoked key
 * stops working at once in every process.
 */
export class Authenticator {
  readonly #root: ApiKeyVerifier;
  readonly #db: Kysely<DB>;

  constructor(root: ApiKeyVerifier, db: Kysely<DB>) {
    this.#root = root;
    this.#db = db;
  }

  async authenticate(presented: string): Promise<Principal | undefined> {
    if (this.#root.verify(presented)) return ROOT;
    if (!presented.startsWith(SECRET_PREFIXES.apiKey)) return undefined;
    const row = await this.#db
      .selectFrom('api_keys')
      .select(['id', 'organization_id', 'scopes'])
      .where('key_hash', '=', hashSecret(presented))
      .where('source', '=', 'api')
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      id: row.id,
      root: false,
      organizationId: row.organization_id,
      scopes: new Set(row.scopes as ApiKeyScope[]),
    };
  }
}

/**
 * What a set of scopes allows, spelled out: `write` includes `read` and `sessions:write`, `read`
 * includes `events:read` (the same rule as the route check in http/v1/access.ts).
 */
export function impliedScopes(scopes: ReadonlySet<ApiKeyScope>): Set<ApiKeyScope> {
  const held = new Set(scopes);
  if (held.has('write')) held.add('read').add('sessions:write');
  if (held.has('read')) held.add('events:read');
  return held;
}

export function toApiKey(row: ApiKeyRow): Schemas['ApiKey'] {
  return {
    object: 'api_key',
    id: row.id,
    name: row.name ?? '',
    organization_id: row.organization_id,
    scopes: row.scopes as ApiKeyScope[],
    hint: row.hint ?? '',
    created_at: row.created_at.toISOString(),
  };
}

/**
 * Creates an API key for `principal`. A key can only hand on what it holds: scopes it has itself,
 * and its own organization (a key confined to one organization never creates an unconfined key).
 */
export async function createApiKey(
  ctx: Context,
  principal: Principal,
  input: { name: string; organization_id?: string | undefined; scopes: ApiKeyScope[] },
): Promise<Schemas['ApiKeyWithSecret']> {
  const organizationId = input.organization_id ?? principal.organizationId;
  if (principal.organizationId !== null && organizationId !== principal.organizationId) {
    throw notFound('organization', organizationId ?? '');
  }
  const scopes = [...new Set(input.scopes)];
  const held = impliedScopes(principal.scopes);
  const missing = scopes.filter((scope) => !held.has(scope));
  if (missing.length > 0) {
    throw new ApiError(
      403,
      'forbidden',
      `This key cannot grant scopes it does not hold: ${missing.join(', ')}.`,
    );
  }
  if (organizationId !== null) {
    const organization = await ctx.db
      .selectFrom('organizations')
      .select('id')
      .where('id', '=', organizationId)
      .executeTakeFirst();
    if (!organization) throw notFound('organization', organizationId);
  }
  const key = newSecret('apiKey');
  const now = ctx.now();
  // The organization's deletion cascades to its keys (foreign key), so a key created while the
  // organization is being deleted fails the insert rather than outliving it.
  const row = await ctx.db
    .insertInto('api_keys')
    .values({
      id: newId('apiKey', now.getTime()),
      key_hash: hashSecret(key),
      source: 'api',
      name: input.name,
      organization_id: organizationId,
      scopes: JSON.stringify(scopes),
      hint: secretHint(key),
      created_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
    .catch((error: unknown) => {
      if ((error as { code?: string }).code === '23503') throw notFound('organization', organizationId ?? '');
      throw error;
    });
  return { ...toApiKey(row), key };
}

/** Live API keys in `principal`'s reach, oldest first. */
export async function listApiKeys(
  ctx: Context,
  principal: Principal,
  options: { limit: number; after?: string | undefined },
): Promise<Page<Schemas['ApiKey']>> {
  const after = decodeCursor(options.after);
  let query = ctx.db
    .selectFrom('api_keys')
    .selectAll()
    .where('source', '=', 'api')
    .where('revoked_at', 'is', null)
    .orderBy('id')
    .limit(options.limit + 1);
  if (principal.organizationId !== null)
    query = query.where('organization_id', '=', principal.organizationId);
  if (after !== undefined) query = query.where('id', '>', after);
  return toPage(await query.execute(), options.limit, (row) => row.id, toApiKey);
}

/** Revokes an API key in `principal`'s reach; others answer 404 as if they did not exist. */
export async function revokeApiKey(ctx: Context, principal: Principal, id: string): Promise<void> {
  let update = ctx.db
    .updateTable('api_keys')
    .set({ revoked_at: ctx.now() })
    .where('id', '=', id)
    .where('source', '=', 'api')
    .where('revoked_at', 'is', null);
  if (principal.organizationId !== null)
    update = update.where('organization_id', '=', principal.organizationId);
  const result = await update.executeTakeFirst();
  if (Number(result.numUpdatedRows) === 0) throw notFound('API key', id);
}
