import type { Client } from 'openapi-fetch';
import type { components, paths } from './contract.js';
import { errorFromResponse } from './errors.js';
import { type Page, PagePromise } from './pagination.js';

/** The typed fetch client every resource calls through. */
export type ApiClient = Client<paths>;
export type Schemas = components['schemas'];

/** Per-call options every method accepts. */
export interface CallOptions {
  /** Aborts the call (retries included). */
  signal?: AbortSignal;
  /**
   * Gives up after this many milliseconds, retries and their waits included: the call then
   * rejects (a `RosterError` with code `network_error`, or the abort reason while waiting to retry).
   * For list methods, per page.
   */
  timeoutMs?: number;
}

/** Per-call options of methods that change something (POST). */
export interface RequestOptions extends CallOptions {
  /** Makes a POST safe to retry: the server runs it once per key (24 h). */
  idempotencyKey?: string;
}

/** Page size and cursor of a list call. */
export interface ListParams {
  limit?: number;
  after?: string;
}

type Result<T> = Promise<{ data?: T; error?: unknown; response: Response }>;

/** The result of an openapi-fetch call: the data, or a RosterError. */
export async function unwrap<T>(call: Result<T>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  throw errorFromResponse(response, error);
}

/** Like {@link unwrap}, for answers without a body (204). */
export async function unwrapEmpty(call: Result<unknown>): Promise<void> {
  const { error, response } = await call;
  if (!response.ok) throw errorFromResponse(response, error);
}

/** The signal of a call: the caller's, bounded by `timeoutMs`. */
function signalOf(options: CallOptions | undefined): AbortSignal | undefined {
  if (options?.timeoutMs === undefined) return options?.signal;
  const timeout = AbortSignal.timeout(options.timeoutMs);
  return options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
}

/** What openapi-fetch takes besides params and body: the headers and signal of the options. */
export function callInit(options: RequestOptions | undefined): {
  headers: Record<string, string>;
  signal: AbortSignal | undefined;
} {
  return {
    headers: options?.idempotencyKey ? { 'Idempotency-Key': options.idempotencyKey } : {},
    signal: signalOf(options),
  };
}

/**
 * A list method's result: `fetchPage` is called with each page's `limit`/`after` and the call's
 * init (a fresh timeout per page), the first page when awaited, the next ones as they are iterated.
 */
export function paged<T>(
  params: ListParams,
  options: CallOptions | undefined,
  fetchPage: (page: { limit?: number; after?: string }, init: ReturnType<typeof callInit>) => Result<Page<T>>,
): PagePromise<T> {
  return new PagePromise(
    (after) => unwrap(fetchPage({ limit: params.limit, after }, callInit(options))),
    params.after,
  );
}
