import cluster from 'node:cluster';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './log.js';
import { missingEmbeddedSettings } from './process-settings.js';
import { StartupError, startServer } from './server.js';
import { CLUSTER_URL_ENV, type ListeningMessage, superviseWorkers } from './workers.js';

/** `npm start`: read the environment, start, and stop gracefully on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(
        `roster: invalid configuration: ${error.message}\n` +
          'Fix or unset that variable and start again (the README lists every variable and its default).\n',
      );
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
    const clusterUrl = cluster.isWorker ? process.env[CLUSTER_URL_ENV] : undefined;
    running = await startServer(config, {
      log,
      ...(clusterUrl ? { listenWhenReady: { url: clusterUrl } } : {}),
      ...(cluster.isWorker
        ? {
            onListening: (url: string) =>
              process.send?.({ roster: 'listening', url } satisfies ListeningMessage),
          }
        : {}),
    });
  } catch (error) {
    if (error instanceof StartupError) {
      process.stderr.write(`roster: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }

  process.stderr.write(startupBanner(running));
  log.info(
    {
      url: running.url,
      public_url: running.publicUrl,
      docs: `${running.publicUrl}/docs`,
      api: `${running.publicUrl}/v1`,
      database: running.database.kind,
    },
    `roster listening on ${running.url}`,
  );
  if (running.database.kind === 'pglite') {
    const advice = missingEmbeddedSettings(process.execArgv, process.env);
    if (advice) log.warn(advice);
  }

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

/**
 * What a person reads on start: the URLs that matter, and where the management key is (the
 * generated one in full, only on the start that generated it).
 */
function startupBanner(running: Awaited<ReturnType<typeof startServer>>): string {
  const base = running.publicUrl;
  const lines = [
    '',
    `Roster is listening on ${running.url}`,
    `  API reference     ${base}/docs`,
    `  management API    ${base}/v1   (Authorization: Bearer <secret key>)`,
    `  SCIM (per IdP)    ${base}/scim/v2/<connection id>`,
    '',
  ];
  if (running.generatedSecretKey) {
    lines.push(
      'Roster generated a management API secret key. It is shown only this once (Roster keeps a hash):',
      '',
      `    ${running.generatedSecretKey}`,
      '',
      'Use it as "Authorization: Bearer <key>" on /v1, or set ROSTER_SECRET_KEY to choose your own.',
      '',
    );
  } else if (running.secretKeySource === 'generated') {
    lines.push(
      'Management key: the one generated and shown at the first start. Lost it? Start with',
      'ROSTER_SECRET_KEY set to a key of your own (32+ characters, e.g. openssl rand -hex 32): while',
      'it is set, it is the only key accepted.',
      '',
    );
  } else {
    lines.push('Management key: ROSTER_SECRET_KEY.', '');
  }
  return `${lines.join('\n')}\n`;
}

main().catch((error: unknown) => {
  process.stderr.write(
    `roster: failed to start: ${(error as Error)?.message ?? String(error)}\n` +
      'Run with LOG_LEVEL=debug for details; the README (Configuration) lists every setting.\n',
  );
  process.exit(1);
});
