/**
 * The canonical JSON behind the snapshot digest of `GET /v1/organizations/{id}/snapshot` (see
 * `SnapshotResponse.digest` in roster.yaml). The server computes the digest with it and the SDK's
 * `snapshotDigest` recomputes it over a consumer's mirror, so both sides share this one definition.
 */

/** JSON with object keys sorted (UTF-16 code unit order, as `Array.prototype.sort`) and no whitespace. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const record = value as Record<string, unknown>;
  const entries = Object.keys(record)
    .filter((key) => record[key] !== undefined)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`);
  return `{${entries.join(',')}}`;
}
