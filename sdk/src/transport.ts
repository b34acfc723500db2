import { RosterError } from './errors.js';

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
  const retryAfter = response?.headers.get('retry-after');
  if (retryAfter) {
    const seconds = Number(retryAfter);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - Date.now();
    if (Number.isFinite(ms) && ms >= 0) return Math.min(ms, options.maxDelayMs);
  }
  const exponential = options.baseDelayMs * 2 ** attempt;
  return Math.min(exponential / 2 + Math.random() * (exponential / 2), options.maxDelayMs);
}

function sleep(ms: number, signal: AbortSignal | null | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
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
