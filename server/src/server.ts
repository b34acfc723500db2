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
import { type Lookup, WebhookTargets } from './events/webhook-target.js';
import { type DispatcherOptions, WebhookDispatcher } from './events/webhooks.js';
import { answerStarting, createRequestListener } from './http/app.js';
import { SocketTracker } from './http/socket-tracker.js';
import { type KeyRing, loadKeyRing } from './key-ring.js';
import { createLogger, type Logger } from './log.js';
import { Maintenance } from './maintenance.js';
import { LocalRateLimiter, SharedRateLimiter } from './rate-limit.js';
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
  readonly connections: SocketTracker;
  /** Present only on the first boot that generated the management key. */
  readonly generatedSecretKey: string | undefined;
  /** Where the management key comes from: ROSTER_SECRET_KEY, or generated (now or at an earlier boot). */
  readonly secretKeySource: 'configured' | 'generated';
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
  /**
   * Another process of this node:cluster already serves `url` (the socket the cluster shares): bind
   * only once ready, so that no connection reaches this process while it starts (the cluster hands
   * connections to listening processes only). Its URLs are that process's, so that every process
   * issues the same `iss` and SCIM base URLs.
   */
  listenWhenReady?: { url: string };
  /** Called with the server's URL once its socket is bound (node:cluster: tells the supervisor). */
  onListening?: (url: string) => void;
  /** Webhook delivery tuning (tests use short backoffs). */
  webhooks?: Partial<Pick<DispatcherOptions, 'baseBackoffMs' | 'timeoutMs' | 'pollMs' | 'leaseMs'>> & {
    /** Name resolution of webhook hosts (tests resolve names without DNS). */
    lookup?: Lookup;
  };
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
        pgliteSharedBuffers: config.pgliteSharedBuffers,
        pgliteWasmTier: config.pgliteWasmTier,
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
    throw new StartupError(
      `cannot open the database: ${(error as Error).message}. ${databaseRecovery(config)}`,
      { cause: error },
    );
  }

  let keyRing: KeyRing;
  try {
    keyRing = await loadKeyRing({
      configuredKey: config.encryptionKey,
      database,
      // The embedded database opened from the config keeps its key in its data directory; an
      // injected database (tests) keeps it in the database.
      dataDir: options.database || config.databaseUrl ? undefined : config.dataDir,
      log,
    });
  } catch (error) {
    await database.close();
    throw new StartupError(
      `cannot load the encryption key: ${(error as Error).message}. Set ROSTER_ENCRYPTION_KEY to the base64 key that encrypted this data (openssl rand -base64 32 makes a new one for a new database).`,
      { cause: error },
    );
  }

  // Slow or idle clients cannot hold connections for long: the headers (also those of a connection's
  // first request) must arrive within headersTimeout, the whole request within requestTimeout, and
  // Node checks both every second rather than every 30 s. Idle keep-alive connections last 65 s,
  // longer than the 60 s idle timeout of the usual load balancers so that they close first.
  const server: Server = createServer({
    keepAliveTimeout: 65_000,
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    connectionsCheckingInterval: 1_000,
  });
  // Every connection is a file descriptor and some memory: beyond this many, new ones are closed.
  server.maxConnections = config.maxConnections;
  // The socket must be bound before the services start (they need the public URL, which may carry
  // an OS-chosen port), so requests can arrive while they start. Every request is answered from
  // the first moment: 503 until the application is ready, never a connection left hanging. A later
  // process of a cluster knows the URL already, and binds once ready (listenWhenReady).
  let handle: RequestListener = answerStarting;
  const connections = new SocketTracker(server);
  server.on(
    'request',
    connections.track((req, res) => handle(req, res)),
  );
  const listen = async () => {
    server.listen(config.port, config.host);
    await once(server, 'listening');
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  };
  let url: string;
  if (options.listenWhenReady) {
    url = options.listenWhenReady.url;
  } else {
    try {
      url = await listen();
    } catch (error) {
      await database.close();
      throw new StartupError(listenFailure(config, error as NodeJS.ErrnoException), { cause: error });
    }
    options.onListening?.(url);
  }
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
      refreshReuseIntervalMs: config.refreshReuseIntervalMs,
      refreshRateLimit: config.refreshRateLimit,
      refreshSynchronousCommit: config.refreshSynchronousCommit,
      scimTokenGraceMs: config.scimTokenGraceMs,
      deletedRetentionMs: config.deletedRetentionMs,
      eventRetentionMs: config.eventRetentionMs,
      syncLogRetentionMs: config.syncLogRetentionMs,
      portalSessionTtlMs: config.portalSessionTtlMs,
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
    throw new StartupError(
      `cannot load the signing keys: ${(error as Error).message}. They are encrypted with ROSTER_ENCRYPTION_KEY (or ${config.databaseUrl ? 'the key stored in the database' : 'ROSTER_DATA_DIR/encryption.key'}): start with the key that encrypted them.`,
      { cause: error },
    );
  }
  const { lookup, ...dispatcherOptions } = options.webhooks ?? {};
  const webhookTargets = new WebhookTargets({
    allowPrivate: config.webhookAllowPrivate,
    allowed: config.webhookAllowedTargets,
    ...(lookup ? { lookup } : {}),
  });
  try {
    await sequencer.start();
  } catch (error) {
    signingKeys.stop();
    server.close();
    await database.close();
    throw new StartupError(
      `cannot read the events feed: ${(error as Error).message}. ${databaseRecovery(config)}`,
      {
        cause: error,
      },
    );
  }
  // The management key is generated last, once the socket is bound and nothing else can fail: a
  // start that fails must not store a key it never showed (the next start would show none).
  const { verifier, generatedKey } = await setUpSecretKey(database.db, config.secretKey);
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
    webhookTargets,
    apiRateLimiter: rateLimiter('api', config.apiRateLimit),
  });
  handle = listener;
  if (options.listenWhenReady) {
    try {
      await listen();
    } catch (error) {
      signingKeys.stop();
      await sequencer.stop();
      await database.close();
      throw new StartupError(listenFailure(config, error as NodeJS.ErrnoException), { cause: error });
    }
    options.onListening?.(url);
  }
  const maintenance = new Maintenance(ctx, signingKeys);
  maintenance.start();
  const webhooks = new WebhookDispatcher({ ctx, keyRing, targets: webhookTargets, ...dispatcherOptions });
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
    secretKeySource: config.secretKey ? 'configured' : 'generated',
    close,
  };
}

/** How to get past a database that cannot be opened, read or migrated. */
function databaseRecovery(config: Config): string {
  return config.databaseUrl
    ? 'Check that PostgreSQL runs and that DATABASE_URL (user, password, host, port, database) is right, then start again.'
    : `The embedded database lives in ROSTER_DATA_DIR (${config.dataDir}): stop the other process using it, or set ROSTER_DATA_DIR to another directory (moving the old one away starts from an empty database).`;
}

/** Why the socket could not be bound, and what to start with instead. */
function listenFailure(config: Config, error: NodeJS.ErrnoException): string {
  const where = `${config.host}:${config.port}`;
  switch (error.code) {
    case 'EADDRINUSE':
      return `cannot listen on ${where}: address already in use. Another program (maybe another Roster) listens there: stop it, or start on another port, e.g. PORT=${config.port === 0 ? 3001 : config.port + 1} npm start (PORT=0 picks a free one).`;
    case 'EACCES':
      return `cannot listen on ${where}: permission denied. Ports below 1024 need privileges: set PORT to 1024 or above.`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where}: this machine has no such address. Set HOST to one of its addresses (127.0.0.1, or 0.0.0.0 for all).`;
    default:
      return `cannot listen on ${where}: ${error.message}. Set PORT or HOST.`;
  }
}
