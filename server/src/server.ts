import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setUpSecretKey } from './api-keys.js';
import type { Config } from './config.js';
import { type Context, createContext } from './context.js';
import { type Database, openDatabase } from './db/database.js';
import { migrateToLatest } from './db/migrate.js';
import { SyncLogWriter } from './directory/sync-log.js';
import { Sequencer } from './events/sequencer.js';
import { type DispatcherOptions, WebhookDispatcher } from './events/webhooks.js';
import { answerStarting, createRequestListener } from './http/app.js';
import { ConnectionTracker } from './http/connections.js';
import { LocalRateLimiter, SharedRateLimiter } from './http/scim/rate-limit.js';
import { type KeyRing, loadKeyRing } from './key-ring.js';
import { createLogger, type Logger } from './log.js';
import { Maintenance } from './maintenance.js';
import { SigningKeys } from './sessions/signing-keys.js';

export interface RunningServer {
  /** Where this process listens, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  /** The externally visible base URL (ROSTER_PUBLIC_URL, else {@link url}). */
  readonly publicUrl: string;
  readonly database: Database;
  readonly ctx: Context;
  readonly sequencer: Sequencer;
  readonly log: Logger;
  readonly syncLog: SyncLogWriter;
  readonly maintenance: Maintenance;
  readonly webhooks: WebhookDispatcher;
  readonly keyRing: KeyRing;
  readonly signingKeys: SigningKeys;
  /** The HTTP connections and the requests in flight on them. */
  readonly connections: ConnectionTracker;
  /** Present only on the first boot that generated the management key. */
  readonly generatedSecretKey: string | undefined;
  /** Graceful stop: no new connections, in-flight requests finish, then the database closes. */
  close(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Use this database instead of opening one from the config (tests); it is closed on close(). */
  database?: Database;
  now?: () => Date;
  /** How long close() waits for in-flight requests before cutting connections. */
  shutdownTimeoutMs?: number;
  /** Webhook delivery tuning (tests use short backoffs). */
  webhooks?: Partial<Pick<DispatcherOptions, 'baseBackoffMs' | 'timeoutMs' | 'pollMs' | 'fetch'>>;
}

export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/**
 * The composition root: config -> database (migrated) -> services -> HTTP. main.ts calls it with
 * the environment's config; the test harness calls it with a fresh database per test file.
 */
export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger(config.logLevel);

  let database: Database;
  try {
    database =
      options.database ??
      (await openDatabase({
        url: config.databaseUrl,
        dataDir: config.dataDir,
        poolSize: config.databasePoolSize,
        pooler: config.databasePooler,
        directUrl: config.databaseDirectUrl,
        connectTimeoutMs: config.databaseConnectTimeoutMs,
        queueLimit: config.databaseQueueLimit,
        statementTimeoutMs: config.databaseStatementTimeoutMs,
        lockTimeoutMs: config.databaseLockTimeoutMs,
        idleInTransactionTimeoutMs: config.databaseIdleInTransactionTimeoutMs,
        sessionSettings: config.databaseSessionSettings,
        onError: (error) => log.warn({ err: error }, 'idle database connection failed'),
      }));
    const applied = await migrateToLatest(database.db);
    if (applied.length > 0) log.info({ migrations: applied }, 'database migrated');
  } catch (error) {
    throw new StartupError(`cannot open the database: ${(error as Error).message}`, { cause: error });
  }

  const { verifier, generatedKey } = await setUpSecretKey(database.db, config.secretKey);
  const keyRing = await loadKeyRing({
    configuredKey: config.encryptionKey,
    database,
    // The embedded database opened from the config keeps its key in its data directory; an
    // injected database (tests) keeps it in the database.
    dataDir: options.database || config.databaseUrl ? undefined : config.dataDir,
    log,
  });

  const server: Server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 120_000 });
  // The socket must be bound before the services start (they need the public URL, which may carry
  // an OS-chosen port), so requests can arrive while they start. Every request is answered from
  // the first moment: 503 until the application is ready, never a connection left hanging.
  let handle: RequestListener = answerStarting;
  const connections = new ConnectionTracker(server);
  server.on(
    'request',
    connections.track((req, res) => handle(req, res)),
  );
  try {
    server.listen(config.port, config.host);
    await once(server, 'listening');
  } catch (error) {
    await database.close();
    const reason =
      (error as NodeJS.ErrnoException).code === 'EADDRINUSE'
        ? 'address already in use'
        : (error as Error).message;
    throw new StartupError(`cannot listen on ${config.host}:${config.port}: ${reason} (set PORT or HOST)`, {
      cause: error,
    });
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  const publicUrl = config.publicUrl ?? url;

  const sequencer = new Sequencer({ database, log });
  const ctx = createContext({
    db: database.db,
    dbKind: database.kind,
    log,
    now: options.now,
    settings: {
      publicUrl,
      sessionTtlMs: config.sessionTtlMs,
      sessionLifetimeMs: config.sessionLifetimeMs,
      scimTokenGraceMs: config.scimTokenGraceMs,
      deletedRetentionMs: config.deletedRetentionMs,
      eventRetentionMs: config.eventRetentionMs,
      syncLogRetentionMs: config.syncLogRetentionMs,
    },
    afterCommit: () => sequencer.kick(),
    feedHead: () => sequencer.head,
  });
  const syncLog = new SyncLogWriter(ctx);
  const signingKeys = new SigningKeys({ ctx, keyRing, alg: config.signingAlg });
  try {
    await signingKeys.start();
  } catch (error) {
    server.close();
    await database.close();
    throw new StartupError(`cannot load the signing keys: ${(error as Error).message}`, { cause: error });
  }
  // On PostgreSQL other processes may serve the same clients: the limits are kept in the database.
  const rateLimiter = (scope: string, rate: number) =>
    database.kind === 'postgres'
      ? new SharedRateLimiter(database.db, scope, rate)
      : new LocalRateLimiter(rate);
  const listener = createRequestListener({
    ctx,
    database,
    apiKeys: verifier,
    bodyLimitBytes: config.bodyLimitBytes,
    scimRateLimiter: rateLimiter('scim', config.scimRateLimit),
    // Failed authentications stay per process: counting them in the database would turn a flood
    // of bad tokens into a flood of writes.
    authFailureRateLimiter: new LocalRateLimiter(config.authFailureRateLimit),
    trustProxyHops: config.trustProxyHops,
    syncLog,
    waitForFeed: (after, timeoutMs, signal) => sequencer.waitForAdvance(after, timeoutMs, signal),
    keyRing,
    signingKeys,
    refreshRateLimiter: rateLimiter('refresh', config.refreshRateLimit),
  });
  await sequencer.start();
  handle = listener;
  const maintenance = new Maintenance(ctx, signingKeys);
  maintenance.start();
  const webhooks = new WebhookDispatcher({ ctx, keyRing, ...options.webhooks });
  webhooks.start();
  sequencer.onAdvance(() => webhooks.wake());

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      const timeout = options.shutdownTimeoutMs ?? 10_000;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      sequencer.drain();
      // Connections turn idle as their last request finishes: close them as they do. Those that
      // never carried a request are idle from the start.
      connections.closeIdle();
      const sweep = setInterval(() => connections.closeIdle(), 50);
      const timer = setTimeout(() => server.closeAllConnections(), timeout);
      await closed;
      clearInterval(sweep);
      clearTimeout(timer);
      maintenance.stop();
      signingKeys.stop();
      await webhooks.stop();
      await syncLog.flush();
      await sequencer.stop();
      await database.close();
    })();
    return closing;
  };

  return {
    url,
    publicUrl,
    database,
    ctx,
    sequencer,
    log,
    syncLog,
    maintenance,
    webhooks,
    keyRing,
    signingKeys,
    connections,
    generatedSecretKey: generatedKey,
    close,
  };
}
