import type { components } from './contract.js';

/** Error codes of the management API (openapi/roster.yaml `ErrorCode`), plus the client's own. */
export type RosterErrorCode = components['schemas']['ErrorCode'] | 'network_error' | 'unexpected_response';

export interface RosterErrorDetail {
  path: string;
  code: string;
  message: string;
}

/**
 * Every failure of a Roster API call: `status` (0 when no response arrived), the API's `code`, and
 * the `requestId` that finds the request in the server's logs.
 *
 * @example
 * ```ts
 * try {
 *   await roster.organizations.create({ name: 'Acme', slug: 'acme' });
 * } catch (error) {
 *   if (error instanceof RosterError && error.code === 'slug_taken') {
 *     // pick another slug
 *   }
 * }
 * ```
 */
export class RosterError extends Error {
  override readonly name = 'RosterError';
  readonly status: number;
  readonly code: RosterErrorCode;
  readonly requestId: string | undefined;
  readonly details: RosterErrorDetail[];

  constructor(
    status: number,
    code: RosterErrorCode,
    message: string,
    options: {
      requestId?: string | undefined;
      details?: RosterErrorDetail[] | undefined;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.status = status;
    this.code = code;
    this.requestId = options.requestId;
    this.details = options.details ?? [];
  }
}

/** Builds a RosterError from an error response (the `{"error": {…}}` body, or anything else). */
export function errorFromResponse(response: Response, body: unknown): RosterError {
  const error = (
    body as {
      error?: { code?: string; message?: string; request_id?: string; details?: RosterErrorDetail[] };
    }
  )?.error;
  const requestId = error?.request_id ?? response.headers.get('x-request-id') ?? undefined;
  if (error?.code && error.message) {
    return new RosterError(response.status, error.code as RosterErrorCode, error.message, {
      requestId,
      details: error.details,
    });
  }
  return new RosterError(
    response.status,
    'unexpected_response',
    `Unexpected ${response.status} response from Roster`,
    { requestId },
  );
}
