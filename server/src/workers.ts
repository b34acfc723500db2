import cluster, { type Worker } from 'node:cluster';
import type { Logger } from './log.js';

/** Pause before a worker that died is replaced, so that a crash loop does not spin. */
const RESTART_DELAY_MS = 1000;

/**
 * How the supervisor tells a worker it forks after the first one listens where that one listens:
 * such a worker binds only once it is ready (see startServer's listenWhenReady). Internal to a
 * cluster, not a setting.
 */
export const CLUSTER_URL_ENV = 'ROSTER_INTERNAL_CLUSTER_URL';

/** What a worker sends the supervisor once its socket is bound. */
export interface ListeningMessage {
  roster: 'listening';
  url: string;
}

const isListeningMessage = (message: unknown): message is ListeningMessage =>
  typeof message === 'object' &&
  message !== null &&
  (message as ListeningMessage).roster === 'listening' &&
  typeof (message as ListeningMessage).url === 'string';

/**
 * `ROSTER_WORKERS=N npm start`: this process supervises N server processes (node:cluster: they
 * share the listening socket, and the supervisor hands new connections to them in turn). Each
 * worker is a whole server with its own DATABASE_POOL_SIZE connections; what they must agree on
 * (rate limits, page cursors, webhook leases, the feed's numbering) lives in PostgreSQL, so the
 * same holds for processes on several hosts.
 *
 * - The first worker starts alone and the others once it listens, so that migrations run and a
 *   management key is generated (and printed) once. The others, and every replacement, bind the
 *   shared socket only once ready: the supervisor hands connections to listening workers only, so
 *   a starting worker takes none (no `503 Roster is starting.` while another serves), and a
 *   load balancer's readiness probe answered by one worker holds for all of them.
 * - A worker that fails before any worker listened ends the supervisor with its exit code: a
 *   configuration or database problem would only repeat. A worker that dies later is replaced.
 * - SIGTERM or SIGINT stops every worker gracefully; the supervisor exits when all have, with 0
 *   when all stopped cleanly.
 */
export function superviseWorkers(count: number, log: Logger): void {
  const live = new Set<Worker>();
  /** Where the first worker listens, once it does. */
  let url: string | undefined;
  let stopping = false;
  let exitCode = 0;

  const fork = () => {
    if (!stopping) live.add(cluster.fork(url ? { [CLUSTER_URL_ENV]: url } : {}));
  };
  const stop = (signal: NodeJS.Signals | undefined) => {
    if (stopping) return;
    stopping = true;
    if (signal) log.info({ signal, workers: live.size }, 'shutting down the server processes');
    for (const worker of live) worker.process.kill('SIGTERM');
    if (live.size === 0) process.exit(exitCode);
  };

  cluster.on('message', (_worker, message: unknown) => {
    if (url !== undefined || !isListeningMessage(message)) return;
    url = message.url;
    for (let i = 1; i < count; i++) fork();
  });
  cluster.on('exit', (worker, code, signal) => {
    live.delete(worker);
    if (!stopping && url === undefined) {
      exitCode = code || 1;
      stop(undefined);
      return;
    }
    if (stopping) {
      if (code !== 0) exitCode = 1;
      if (live.size === 0) process.exit(exitCode);
      return;
    }
    log.error(
      { pid: worker.process.pid, code, signal },
      'a server process exited unexpectedly; starting another',
    );
    setTimeout(fork, RESTART_DELAY_MS);
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  fork();
}
