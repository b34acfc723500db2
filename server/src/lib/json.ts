/**
 * Equality of two JSON values as they serialize, key order included: what a row stores is what
 * was written, so a reordered object counts as a change. (history.ts compares canonically, with
 * keys sorted, where it hashes snapshots.)
 */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
