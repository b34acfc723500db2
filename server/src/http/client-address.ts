import type { IncomingMessage } from 'node:http';

/**
 * The address a request came from, for per-client limits. With `trustProxyHops` = 0 (the default)
 * it is the TCP peer, and `X-Forwarded-For` is ignored: any client can write that header. Behind
 * N proxies that each append the address they received from (nginx `$proxy_add_x_forwarded_for`,
 * AWS ALB, …), set N: the client is the entry N places from the right of `X-Forwarded-For`, the
 * rightmost entries being written by the trusted proxies (a client-supplied prefix is skipped).
 */
export function clientAddress(req: IncomingMessage, trustProxyHops: number): string {
  const peer = req.socket.remoteAddress ?? 'unknown';
  if (trustProxyHops <= 0) return peer;
  const header = req.headers['x-forwarded-for'];
  const entries = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  // Fewer entries than trusted proxies: the chain is shorter than configured; the leftmost is the
  // best the proxies said.
  return entries[Math.max(0, entries.length - trustProxyHops)] ?? peer;
}
