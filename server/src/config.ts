import { z } from 'zod';
import { parseAllowedTarget } from './lib/allowed-target.js';

/**
 * Configuration from the environment. This module is the only reader of `process.env`
 * (main.ts passes it in); everything else receives the frozen {@link Config}.
 */

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const DURATION_UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Parses `"90"` (seconds), `"90s"`, `"15m"`, `"24h"`, `"30d"` or `"250ms"` into milliseconds. */
export function parseDuration(value: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!match) return undefined;
  const unit = (match[2] ?? 's') as keyof typeof DURATION_UNITS;
  return Math.round(Number(match[1]) * DURATION_UNITS[unit]);
}

const BYTE_UNITS = { b: 1, kb: 1024, mb: 1024 * 1024 } as const;

/** Parses `"1048576"`, `"512kb"` or `"1mb"` into bytes. */
export function parseBytes(value: string): number | undefined {
  const match = /^(\d+)(b|kb|mb)?$/i.exec(value.trim());
  if (!match) return undefined;
  const unit = (match[2]?.toLowerCase() ?? 'b') as keyof typeof BYTE_UNITS;
  return Number(match[1]) * BYTE_UNITS[unit];
}

const duration = (fallback: string, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}) =>
  z
    .string()
    .default(fallback)
    .transform((raw, ctx) => {
      const ms = parseDuration(raw);
      if (ms === undefined || ms < min || ms > max) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a duration such as "60", "60s", "15m", "24h" or "30d" between ${min / 1000}s and ${max / 1000}s`,
        });
        return z.NEVER;
      }
      return ms;
    });

const positiveInt = (fallback: number, max: number) =>
  z.coerce
    .number({ error: 'must be a whole number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(max, `must be at most ${max}`)
    .default(fallback);

const envSchema = z.object({
  PORT: z.coerce
    .number({ error: 'must be a port number' })
    .int('must be a port number')
    .min(0, 'must be between 0 and 65535')
    .max(65535, 'must be between 0 and 65535')
    .default(3000),
  HOST: z.string().min(1, 'must not be empty').default('127.0.0.1'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/.+/, 'must be a postgres:// or postgresql:// connection URL')
    .optional(),
  DATABASE_POOL_SIZE: positiveInt(10, 200),
  DATABASE_DIRECT_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/.+/, 'must be a postgres:// or postgresql:// connection URL')
    .optional(),
  ROSTER_DATABASE_POOLER: z
    .enum(['none', 'transaction'], { error: 'must be "none" or "transaction"' })
    .optional(),
  ROSTER_WORKERS: positiveInt(1, 64),
  DATABASE_CONNECT_TIMEOUT: duration('5s', { min: 100, max: 600_000 }),
  DATABASE_QUEUE_LIMIT: positiveInt(200, 100_000),
  DATABASE_STATEMENT_TIMEOUT: duration('30s', { max: 86_400_000 }),
  DATABASE_LOCK_TIMEOUT: duration('10s', { max: 86_400_000 }),
  DATABASE_IDLE_IN_TRANSACTION_TIMEOUT: duration('60s', { max: 86_400_000 }),
  DATABASE_SESSION_SETTINGS: z
    .enum(['connect', 'none'], { error: 'must be "connect" or "none"' })
    .default('connect'),
  ROSTER_DATA_DIR: z.string().min(1, 'must not be empty').default('.roster'),
  ROSTER_PGLITE_SHARED_BUFFERS: z
    .string()
    .default('16mb')
    .transform((raw, ctx) => {
      const bytes = parseBytes(raw);
      if (bytes === undefined || bytes < 1024 * 1024 || bytes > 1024 * 1024 * 1024) {
        ctx.addIssue({ code: 'custom', message: 'must be a size such as "16mb" (between 1mb and 1024mb)' });
        return z.NEVER;
      }
      return bytes;
    }),
  ROSTER_PGLITE_WASM_TIER: z
    .enum(['optimizing', 'baseline'], { error: 'must be "optimizing" or "baseline"' })
    .default('optimizing'),
  ROSTER_SECRET_KEY: z
    .string()
    .min(32, 'must be at least 32 characters (leave it unset to have one generated)')
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
    .optional(),
  ROSTER_PUBLIC_URL: z
    .url({
      protocol: /^https?$/,
      error: 'must be an absolute http(s) URL such as https://roster.example.com',
    })
    .transform((url) => url.replace(/\/+$/, ''))
    .optional(),
  ROSTER_ENCRYPTION_KEY: z
    .string()
    .regex(/^[A-Za-z0-9+/_-]{43}=?$/, 'must be 32 random bytes in base64 (openssl rand -base64 32)')
    .optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  ROSTER_SESSION_TTL: duration('60s', { min: 5_000, max: 86_400_000 }),
  ROSTER_SESSION_LIFETIME: duration('30d', { min: 60_000 }),
  ROSTER_SIGNING_ALG: z.enum(['ES256', 'EdDSA'], { error: 'must be ES256 or EdDSA' }).default('ES256'),
  ROSTER_REFRESH_RATE_LIMIT: positiveInt(5, 1_000_000),
  ROSTER_REFRESH_REUSE_INTERVAL: duration('10s', { max: 60_000 }),
  ROSTER_REFRESH_SYNCHRONOUS_COMMIT: z.enum(['on', 'off'], { error: 'must be on or off' }).default('off'),
  ROSTER_SCIM_TOKEN_GRACE: duration('24h'),
  ROSTER_SCIM_RATE_LIMIT: positiveInt(600, 1_000_000),
  ROSTER_AUTH_FAILURE_RATE_LIMIT: positiveInt(10, 1_000_000),
  ROSTER_API_RATE_LIMIT: positiveInt(600, 1_000_000),
  ROSTER_TRUST_PROXY_HOPS: z.coerce
    .number({ error: 'must be a whole number' })
    .int('must be a whole number')
    .min(0, 'must be between 0 and 10')
    .max(10, 'must be between 0 and 10')
    .default(0),
  ROSTER_BODY_LIMIT: z
    .string()
    .default('1mb')
    .transform((raw, ctx) => {
      const bytes = parseBytes(raw);
      if (bytes === undefined || bytes < 1024) {
        ctx.addIssue({ code: 'custom', message: 'must be a size such as "1mb" or "512kb" (at least 1kb)' });
        return z.NEVER;
      }
      return bytes;
    }),
  ROSTER_HEADERS_TIMEOUT: duration('10s', { min: 1_000, max: 300_000 }),
  ROSTER_REQUEST_TIMEOUT: duration('30s', { min: 1_000, max: 3_600_000 }),
  ROSTER_MAX_CONNECTIONS: positiveInt(4096, 1_000_000),
  ROSTER_DELETED_RETENTION: duration('30d'),
  ROSTER_EVENT_RETENTION: duration('30d', { min: 3_600_000 }),
  ROSTER_SYNC_LOG_RETENTION: duration('7d', { min: 3_600_000 }),
  ROSTER_WEBHOOK_ALLOW_PRIVATE: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .default('false')
    .transform((value) => value === 'true'),
  ROSTER_WEBHOOK_ALLOWED_TARGETS: z
    .string()
    .default('')
    .transform((raw, ctx) => {
      const entries = raw
        .split(',')
        .map((entry) => entry.trim())
        .filter(Boolean);
      const bad = entries.find((entry) => !parseAllowedTarget(entry));
      if (bad !== undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a comma-separated list of CIDR ranges, addresses or host names ("${bad}" is none)`,
        });
        return z.NEVER;
      }
      return entries;
    }),
  ROSTER_PORTAL_SESSION_TTL: duration('1h', { min: 60_000, max: 86_400_000 }),
});

export interface Config {
  readonly port: number;
  readonly host: string;
  /** `undefined` means the embedded database (PGlite) under {@link dataDir}. */
  readonly databaseUrl: string | undefined;
  readonly databasePoolSize: number;
  /**
   * A direct connection to the same database when {@link databaseUrl} goes through a pooler: used
   * for LISTEN (a pooler in transaction mode cannot carry it) and for migrations.
   */
  readonly databaseDirectUrl: string | undefined;
  /**
   * `transaction`: {@link databaseUrl} is a transaction-mode pooler (PgBouncer): no session state,
   * no named prepared statements, no `options` startup parameter. Defaults to `transaction` when
   * a direct URL is given, else `none`.
   */
  readonly databasePooler: 'none' | 'transaction';
  /** Wait for a database connection (opening one, or for the busy pool), ms. */
  readonly databaseConnectTimeoutMs: number;
  /** Most queries waiting for a database connection; beyond it 503. */
  readonly databaseQueueLimit: number;
  readonly databaseStatementTimeoutMs: number;
  readonly databaseLockTimeoutMs: number;
  readonly databaseIdleInTransactionTimeoutMs: number;
  /** `connect`: SET the timeouts on each new connection; `none`: leave them to the role (PgBouncer). */
  readonly databaseSessionSettings: 'connect' | 'none';
  readonly dataDir: string;
  /** PostgreSQL `shared_buffers` of the embedded database, in bytes. */
  readonly pgliteSharedBuffers: number;
  /** ROSTER_PGLITE_WASM_TIER: `optimizing` lets V8 recompile PGlite's hot WebAssembly with its optimising compiler; `baseline` keeps its baseline compiler only (less memory, slower queries). */
  readonly pgliteWasmTier: 'optimizing' | 'baseline';
  /** Server processes `npm start` runs (node:cluster); more than 1 needs PostgreSQL. */
  readonly workers: number;
  readonly secretKey: string | undefined;
  /** Externally visible base URL without a trailing slash; unset means `http://HOST:PORT` as bound. */
  readonly publicUrl: string | undefined;
  readonly encryptionKey: string | undefined;
  readonly logLevel: LogLevel;
  readonly sessionTtlMs: number;
  readonly sessionLifetimeMs: number;
  /** Algorithm of newly generated signing keys. */
  readonly signingAlg: 'ES256' | 'EdDSA';
  /** Refreshes per second per session (token bucket, per process). */
  readonly refreshRateLimit: number;
  /**
   * How long a just-rotated refresh token still answers its successor pair (idempotently) instead
   * of revoking the session as stolen: parallel requests and replicas racing one refresh cookie.
   */
  readonly refreshReuseIntervalMs: number;
  /**
   * Whether a refresh's rotation waits for PostgreSQL to flush its commit to disk (`on`), or
   * commits without waiting (`off`, PostgreSQL's `synchronous_commit = off` for that one statement):
   * a crash may then lose the last moments of rotations, never a revocation (see the README).
   */
  readonly refreshSynchronousCommit: boolean;
  readonly scimTokenGraceMs: number;
  /** SCIM requests per second per connection, per server process. */
  readonly scimRateLimit: number;
  /** Failed SCIM authentications per second per client address, per server process. */
  readonly authFailureRateLimit: number;
  /** `/v1` requests per second per API key (the root key is one key), shared by the processes. */
  readonly apiRateLimit: number;
  /** Proxies in front of Roster whose X-Forwarded-For entries are trusted (0: use the peer address). */
  readonly trustProxyHops: number;
  readonly bodyLimitBytes: number;
  /** How long a connection may take to send a request's headers (or its first request). */
  readonly headersTimeoutMs: number;
  /** How long a request may take to arrive whole, headers and body (slow senders are cut off). */
  readonly requestTimeoutMs: number;
  /** Open HTTP connections per process; beyond it new ones are closed at once. */
  readonly maxConnections: number;
  readonly deletedRetentionMs: number;
  readonly eventRetentionMs: number;
  readonly syncLogRetentionMs: number;
  /** Webhooks may target private, loopback and link-local addresses. */
  readonly webhookAllowPrivate: boolean;
  /** CIDR ranges, addresses and host names webhooks may target although private. */
  readonly webhookAllowedTargets: readonly string[];
  /** Lifetime of an Admin Portal session (opened from a one-time link). */
  readonly portalSessionTtlMs: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Validates the environment once. Throws a {@link ConfigError} whose message is one line naming
 * the variable, e.g. `PORT must be between 0 and 65535 (got "70000")`.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  // An empty variable (`PORT=`) means "unset", as shells and .env files commonly produce it.
  const present = Object.fromEntries(
    Object.keys(envSchema.shape).flatMap((key) => {
      const value = env[key];
      return value === undefined || value === '' ? [] : [[key, value]];
    }),
  );
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0]);
    const got = present[name];
    const shown = name === 'ROSTER_SECRET_KEY' || name === 'ROSTER_ENCRYPTION_KEY' ? '' : ` (got "${got}")`;
    throw new ConfigError(`${name} ${issue.message}${got === undefined ? '' : shown}`);
  }
  const e = parsed.data;
  if (!e.DATABASE_URL && (e.DATABASE_DIRECT_URL || e.ROSTER_DATABASE_POOLER === 'transaction')) {
    const name = e.DATABASE_DIRECT_URL ? 'DATABASE_DIRECT_URL' : 'ROSTER_DATABASE_POOLER';
    throw new ConfigError(`${name} needs DATABASE_URL (the embedded database has no pooler)`);
  }
  if (!e.DATABASE_URL && e.ROSTER_WORKERS > 1) {
    throw new ConfigError(
      'ROSTER_WORKERS must be 1 with the embedded database, which serves one process (set DATABASE_URL to run several)',
    );
  }
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    databaseDirectUrl: e.DATABASE_DIRECT_URL,
    databasePooler: e.ROSTER_DATABASE_POOLER ?? (e.DATABASE_DIRECT_URL ? 'transaction' : 'none'),
    databaseConnectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT,
    databaseQueueLimit: e.DATABASE_QUEUE_LIMIT,
    databaseStatementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT,
    databaseLockTimeoutMs: e.DATABASE_LOCK_TIMEOUT,
    databaseIdleInTransactionTimeoutMs: e.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT,
    databaseSessionSettings: e.DATABASE_SESSION_SETTINGS,
    dataDir: e.ROSTER_DATA_DIR,
    pgliteSharedBuffers: e.ROSTER_PGLITE_SHARED_BUFFERS,
    pgliteWasmTier: e.ROSTER_PGLITE_WASM_TIER,
    workers: e.ROSTER_WORKERS,
    secretKey: e.ROSTER_SECRET_KEY,
    publicUrl: e.ROSTER_PUBLIC_URL,
    encryptionKey: e.ROSTER_ENCRYPTION_KEY,
    logLevel: e.LOG_LEVEL,
    sessionTtlMs: e.ROSTER_SESSION_TTL,
    sessionLifetimeMs: e.ROSTER_SESSION_LIFETIME,
    signingAlg: e.ROSTER_SIGNING_ALG,
    refreshRateLimit: e.ROSTER_REFRESH_RATE_LIMIT,
    refreshReuseIntervalMs: e.ROSTER_REFRESH_REUSE_INTERVAL,
    refreshSynchronousCommit: e.ROSTER_REFRESH_SYNCHRONOUS_COMMIT === 'on',
    scimTokenGraceMs: e.ROSTER_SCIM_TOKEN_GRACE,
    scimRateLimit: e.ROSTER_SCIM_RATE_LIMIT,
    authFailureRateLimit: e.ROSTER_AUTH_FAILURE_RATE_LIMIT,
    apiRateLimit: e.ROSTER_API_RATE_LIMIT,
    trustProxyHops: e.ROSTER_TRUST_PROXY_HOPS,
    bodyLimitBytes: e.ROSTER_BODY_LIMIT,
    // Node refuses a headers timeout longer than the request timeout.
    headersTimeoutMs: Math.min(e.ROSTER_HEADERS_TIMEOUT, e.ROSTER_REQUEST_TIMEOUT),
    requestTimeoutMs: e.ROSTER_REQUEST_TIMEOUT,
    maxConnections: e.ROSTER_MAX_CONNECTIONS,
    deletedRetentionMs: e.ROSTER_DELETED_RETENTION,
    eventRetentionMs: e.ROSTER_EVENT_RETENTION,
    syncLogRetentionMs: e.ROSTER_SYNC_LOG_RETENTION,
    webhookAllowPrivate: e.ROSTER_WEBHOOK_ALLOW_PRIVATE,
    webhookAllowedTargets: e.ROSTER_WEBHOOK_ALLOWED_TARGETS,
    portalSessionTtlMs: e.ROSTER_PORTAL_SESSION_TTL,
  });
}
