import cluster from 'node:cluster';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './log.js';
import { StartupError, startServer } from './server.js';
import { superviseWorkers } from './workers.js';

/** `npm start`: read the environment, start, and stop gracefully on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`roster: invalid configuration: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }

  if (config.workers > 1 && cluster.isPrimary) {
    superviseWorkers(config.workers, createLogger(config.logLevel));
    return;
  }
  // Several processes write to one stdout: each line says which one.
  const log = cluster.isWorker
    ? createLogger(config.logLevel).child({ pid: process.pid })
    : createLogger(config.logLevel);
  let running: Awaited<ReturnType<typeof startServer>>;
  try {
    running = await startServer(config, { log });
  } catch (error) {
    if (error instanceof StartupError) {
      process.stderr.write(`roster: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }

  if (running.generatedSecretKey) {
    process.stderr.write(
      [
        '',
        'Roster generated a management API secret key. It is shown only this once (Roster keeps a hash):',
        '',
        `    ${running.generatedSecretKey}`,
        '',
        'Use it as "Authorization: Bearer <key>" on /v1, or set ROSTER_SECRET_KEY to choose your own.',
        '',
        '',
      ].join('\n'),
    );
  }
  log.info(
    { url: running.url, public_url: running.publicUrl, database: running.database.kind },
    `roster listening on ${running.url}`,
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    running.close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`roster: failed to start: ${(error as Error)?.message ?? String(error)}\n`);
  process.exit(1);
});
