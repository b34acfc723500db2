/**
 * The HTTP side of the simulated IdP: one SCIM request at a time per call, retried the way Okta and
 * Entra retry (429 and 503 honour Retry-After; network errors back off), and counted for the summary.
 */

export const SCIM_CONTENT_TYPE = 'application/scim+json; charset=utf-8';

export interface ScimClientOptions {
  /** The connection's SCIM base URL, e.g. http://127.0.0.1:3000/scim/v2/conn_… */
  baseUrl: string;
  token: string;
  userAgent?: string;
  /** Attempts after the first on 429/503/network errors (default 5). */
  maxRetries?: number;
  /** Longest wait honoured from a Retry-After header (default 30 s): beyond it, give up. */
  maxRetryAfterMs?: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

/** A response the server gave that the simulated IdP cannot get past. */
export class ScimRequestError extends Error {
  override readonly name = 'ScimRequestError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number | undefined,
    readonly detail: string,
    readonly scimType?: string,
  ) {
    super(
      status === undefined
        ? `${method} ${path} failed: ${detail}`
        : `the server refused ${method} ${path}: ${status}${scimType ? ` ${scimType}` : ''}: ${detail}`,
    );
  }
}

/** Per operation kind (e.g. "PATCH /Groups"): what was sent and what came back. */
export interface OperationStats {
  requests: number;
  retries: number;
  statuses: Map<number, number>;
  ms: number;
}

export class Stats {
  readonly byOperation = new Map<string, OperationStats>();
  readonly startedAt = performance.now();

  record(operation: string, status: number | undefined, ms: number, retried: boolean): void {
    let stats = this.byOperation.get(operation);
    if (!stats) {
      stats = { requests: 0, retries: 0, statuses: new Map(), ms: 0 };
      this.byOperation.set(operation, stats);
    }
    stats.requests += 1;
    if (retried) stats.retries += 1;
    if (status !== undefined) stats.statuses.set(status, (stats.statuses.get(status) ?? 0) + 1);
    stats.ms += ms;
  }

  get requests(): number {
    return [...this.byOperation.values()].reduce((sum, s) => sum + s.requests, 0);
  }

  get retries(): number {
    return [...this.byOperation.values()].reduce((sum, s) => sum + s.retries, 0);
  }

  /** How many responses had this status, over every operation. */
  count(status: number): number {
    return [...this.byOperation.values()].reduce((sum, s) => sum + (s.statuses.get(status) ?? 0), 0);
  }
}

/** Retry-After is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

// biome-ignore lint/suspicious/noExplicitAny: SCIM bodies are open JSON
export type Json = any;

export class ScimClient {
  readonly stats = new Stats();
  readonly #options: Required<Omit<ScimClientOptions, 'userAgent'>> & { userAgent?: string };

  constructor(options: ScimClientOptions) {
    this.#options = {
      maxRetries: 5,
      maxRetryAfterMs: 30_000,
      fetch: globalThis.fetch,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      ...options,
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
    };
  }

  /**
   * Sends one SCIM request; answers the parsed body (undefined for 204). 404 answers undefined
   * when `allow404` (a lookup of something gone). Any other 4xx/5xx, or retries exhausted, throws.
   */
  async request(
    method: string,
    path: string,
    body?: unknown,
    options: { allow404?: boolean } = {},
  ): Promise<Json> {
    const operation = `${method} /${path.replace(/^\//, '').split(/[/?]/)[0]}`;
    const url = `${this.#options.baseUrl}${path.startsWith('/') ? path : `/${path}`}`;
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#options.token}`,
      accept: 'application/scim+json',
    };
    if (this.#options.userAgent) headers['user-agent'] = this.#options.userAgent;
    if (body !== undefined) headers['content-type'] = SCIM_CONTENT_TYPE;

    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      let response: Response;
      try {
        response = await this.#options.fetch(url, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(60_000), // Okta's socket timeout
        });
      } catch (error) {
        const retry = attempt < this.#options.maxRetries;
        this.stats.record(operation, undefined, performance.now() - started, retry);
        if (!retry) {
          throw new ScimRequestError(
            method,
            path,
            undefined,
            (error as Error).cause ? String((error as Error).cause) : (error as Error).message,
          );
        }
        await this.#options.sleep(backoff(attempt));
        continue;
      }
      const text = await response.text();
      const retryable = response.status === 429 || response.status === 503;
      const waitMs = retryable
        ? (parseRetryAfter(response.headers.get('retry-after')) ?? backoff(attempt))
        : undefined;
      const retry =
        waitMs !== undefined && attempt < this.#options.maxRetries && waitMs <= this.#options.maxRetryAfterMs;
      this.stats.record(operation, response.status, performance.now() - started, retry);
      if (retry) {
        await this.#options.sleep(waitMs!);
        continue;
      }
      if (response.status === 404 && options.allow404) return undefined;
      if (response.status >= 400) {
        let detail = text.slice(0, 300);
        let scimType: string | undefined;
        try {
          const parsed = JSON.parse(text) as { detail?: string; scimType?: string };
          detail = parsed.detail ?? detail;
          scimType = parsed.scimType;
        } catch {
          // not JSON: keep the text
        }
        if (retryable) {
          detail = `${detail} (gave up after ${attempt + 1} attempts${waitMs! > this.#options.maxRetryAfterMs ? `; Retry-After asked for ${Math.round(waitMs! / 1000)} s` : ''})`;
        }
        throw new ScimRequestError(method, path, response.status, detail, scimType);
      }
      return text ? JSON.parse(text) : undefined;
    }
  }
}

/** Without Retry-After: 250 ms, 500 ms, 1 s, … up to 8 s. */
const backoff = (attempt: number) => Math.min(8000, 250 * 2 ** attempt);

/** SCIM filter string literal. */
export const quote = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
