import { isIP } from 'node:net';

/** Parses one `ROSTER_WEBHOOK_ALLOWED_TARGETS` entry; undefined when it is none of CIDR, address, host. */
export function parseAllowedTarget(
  entry: string,
): { cidr: [string, number, 'ipv4' | 'ipv6'] } | { host: string } | undefined {
  const [network, prefixText] = entry.split('/') as [string, string | undefined];
  const family = isIP(network);
  if (family !== 0) {
    const max = family === 4 ? 32 : 128;
    const prefix = prefixText === undefined ? max : Number(prefixText);
    if (
      !Number.isInteger(prefix) ||
      prefix < 0 ||
      prefix > max ||
      (prefixText !== undefined && !/^\d+$/.test(prefixText))
    )
      return undefined;
    return { cidr: [network, prefix, family === 4 ? 'ipv4' : 'ipv6'] };
  }
  if (prefixText !== undefined) return undefined;
  return /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(
    entry,
  )
    ? { host: entry.toLowerCase() }
    : undefined;
}
