import { RosterError } from './errors.js';
import { retryAfterMs, sleep } from './timing.js';

export interface RetryOptions {
  /** Attempts after the first; 0 disables retries. Default 2. */
  retries?: number;
  /** Base of the exponential backoff in ms when the server gives no Retry-After. Default 500. */
  baseDelayMs?: number;
  /** Longest wait between two attempts, Retry-After included. Default 30 s. */
  maxDelayMs?: number;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);
const RETRYABLE_STATUS = new Set([429, 503]);

function delayFor(attempt: number, response: Response | undefined, options: Required<RetryOptions>): number {
  const retryAfter = retryAfterMs(response?.headers.get('retry-after'), Date.now());
  if (retryAfter !== undefined) return Math.min(retryAfter, options.maxDelayMs);
  const exponential = options.baseDelayMs * 2 ** attempt;
  return Math.min(exponential / 2 + Math.random() * (exponential / 2), options.maxDelayMs);
}

/**
 * A fetch that retries 429 and 503 answers (honouring Retry-After) and network failures, with
 * exponential backoff and jitter — but only for requests that are safe to repeat: idempotent
 * methods, or a POST that carries an `Idempotency-Key` (the server then runs it once).
 */
export function retryingFetch(baseFetch: typeof fetch, retryOptions: RetryOptions = {}): typeof fetch {
  const options: Required<RetryOptions> = {
    retries: retryOptions.retries ?? 2,
    baseDelayMs: retryOptions.baseDelayMs ?? 500,
    maxDelayMs: retryOptions.maxDelayMs ?? 30_000,
  };
  return async (input, init) => {
    const request = new Request(input, init);
    const repeatable = IDEMPOTENT.has(request.method) || request.headers.has('idempotency-key');
    const body = request.body ? await request.arrayBuffer() : undefined;
    for (let attempt = 0; ; attempt++) {
      let response: Response | undefined;
      try {
        response = await baseFetch(new Request(request, { body }));
      } catch (error) {
        if (request.signal.aborted || !repeatable || attempt >= options.retries) {
          throw new RosterError(0, 'network_error', `Could not reach Roster: ${(error as Error).message}`, {
            cause: error,
          });
        }
      }
      if (response && (!RETRYABLE_STATUS.has(response.status) || !repeatable || attempt >= options.retries))
        return response;
      await sleep(delayFor(attempt, response, options), request.signal);
    }
  };
}
