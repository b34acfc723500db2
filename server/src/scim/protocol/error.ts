import { MESSAGE_SCHEMAS } from './messages.js';

/** `scimType` values of RFC 7644 §3.12, Table 9. */
export type ScimType =
  | 'invalidFilter'
  | 'tooMany'
  | 'uniqueness'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidPath'
  | 'noTarget'
  | 'invalidValue'
  | 'invalidVers'
  | 'sensitive';

/** The SCIM Error message (RFC 7644 §3.12). `status` is a string on the wire. */
export interface ScimErrorBody {
  schemas: [typeof MESSAGE_SCHEMAS.error];
  status: string;
  scimType?: ScimType;
  detail: string;
}

/**
 * Every SCIM failure, thrown by the protocol core and the SCIM store alike and rendered by one
 * function ({@link toScimErrorBody}). `detail` goes to the IdP's provisioning log: say what was
 * wrong with the request, never anything internal.
 */
export class ScimError extends Error {
  override readonly name = 'ScimError';
  readonly status: number;
  readonly scimType: ScimType | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    status: number,
    scimType: ScimType | undefined,
    detail: string,
    options: { cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(detail, { cause: options.cause });
    this.status = status;
    this.scimType = scimType;
    this.headers = options.headers;
  }

  get detail(): string {
    return this.message;
  }
}

export const invalidFilter = (detail: string) => new ScimError(400, 'invalidFilter', detail);
export const invalidSyntax = (detail: string) => new ScimError(400, 'invalidSyntax', detail);
export const invalidPath = (detail: string) => new ScimError(400, 'invalidPath', detail);
export const invalidValue = (detail: string) => new ScimError(400, 'invalidValue', detail);
export const noTarget = (detail: string) => new ScimError(400, 'noTarget', detail);
export const mutability = (detail: string) => new ScimError(400, 'mutability', detail);
export const uniqueness = (detail: string) => new ScimError(409, 'uniqueness', detail);
export const scimNotFound = (detail: string) => new ScimError(404, undefined, detail);

export function toScimErrorBody(error: ScimError): ScimErrorBody {
  return {
    schemas: [MESSAGE_SCHEMAS.error],
    status: String(error.status),
    ...(error.scimType ? { scimType: error.scimType } : {}),
    detail: error.detail,
  };
}
