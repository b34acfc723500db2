import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { parseAllowedTarget } from '../lib/allowed-target.js';

/**
 * Where webhooks may go (issue 9, finding 5: server-side request forgery). A webhook URL is chosen
 * by an API caller, so by default it may not reach the server's own networks: loopback, private,
 * link-local (cloud metadata at 169.254.169.254), carrier-grade NAT (Alibaba's metadata at
 * 100.100.100.200), unique-local IPv6 (AWS's fd00:ec2::254), IPv4-mapped and NAT64/6to4 IPv6 forms
 * of those, multicast and reserved ranges. The check runs on the addresses the host name resolves
 * to, and the connection goes to the checked address (the socket's lookup is pinned to it): a DNS
 * answer that changes between check and connect (DNS rebinding) cannot redirect it. Redirects are
 * not followed.
 *
 * The operator may open it: `ROSTER_WEBHOOK_ALLOW_PRIVATE=true` allows every address;
 * `ROSTER_WEBHOOK_ALLOWED_TARGETS` lists CIDR ranges, addresses or host names that are allowed
 * although private (e.g. `10.20.0.0/16,hooks.internal`).
 *
 * Ranges: RFC 6890 and the IANA special-purpose address registries.
 */

export type Lookup = (hostname: string) => Promise<{ address: string; family: number }[]>;

const BLOCKED_V4: [string, number][] = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT (RFC 6598)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];
const BLOCKED_V6: [string, number][] = [
  ['::', 96], // unspecified, loopback and the deprecated IPv4-compatible form
  ['100::', 64], // discard
  ['2001::', 32], // Teredo (tunnels to arbitrary IPv4)
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local (AWS metadata fd00:ec2::254)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];

const blocked = new BlockList();
for (const [network, prefix] of BLOCKED_V4) blocked.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of BLOCKED_V6) blocked.addSubnet(network, prefix, 'ipv6');

/** The eight 16-bit words of an IPv6 address (with or without a dotted IPv4 tail). */
function ipv6Words(address: string): number[] {
  let text = address.split('%')[0]!.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [p, q, r, s] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -dotted[1]!.length)}${((p << 8) | q).toString(16)}:${((r << 8) | s).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const middle = tail === undefined ? [] : new Array(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((word) => Number.parseInt(word, 16));
}

/** The IPv4 address an IPv6 address carries (IPv4-mapped, NAT64, 6to4), if any. */
function embeddedIpv4(address: string): string | undefined {
  const w = ipv6Words(address);
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zero = (from: number, to: number) => w.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && w[5] === 0xffff) return v4(w[6]!, w[7]!); // ::ffff:a.b.c.d
  if (w[0] === 0x64 && w[1] === 0xff9b && zero(2, 6)) return v4(w[6]!, w[7]!); // 64:ff9b::/96
  if (w[0] === 0x2002) return v4(w[1]!, w[2]!); // 6to4 2002:aabb:ccdd::/48
  return undefined;
}

/** Why `address` may not be a webhook target by default, or undefined when it may. */
export function privateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family !== 6) return true;
  const inner = embeddedIpv4(address);
  if (inner !== undefined) return blocked.check(inner, 'ipv4');
  return blocked.check(address.split('%')[0]!, 'ipv6');
}

export class WebhookTargetRefused extends Error {
  override readonly name = 'WebhookTargetRefused';
}

export interface WebhookTargetOptions {
  /** `ROSTER_WEBHOOK_ALLOW_PRIVATE`: every address is allowed. */
  allowPrivate?: boolean;
  /** `ROSTER_WEBHOOK_ALLOWED_TARGETS` entries. */
  allowed?: readonly string[];
  /** Name resolution (tests inject one; default: the system resolver, every address). */
  lookup?: Lookup;
}

export interface PinnedTarget {
  url: URL;
  address: string;
  family: 4 | 6;
}

export class WebhookTargets {
  readonly #allowPrivate: boolean;
  readonly #allowedRanges = new BlockList();
  readonly #allowedHosts = new Set<string>();
  readonly #lookup: Lookup;

  constructor(options: WebhookTargetOptions = {}) {
    this.#allowPrivate = options.allowPrivate ?? false;
    for (const entry of options.allowed ?? []) {
      const parsed = parseAllowedTarget(entry);
      if (!parsed) throw new Error(`not a CIDR range, address or host name: ${entry}`);
      if ('host' in parsed) this.#allowedHosts.add(parsed.host);
      else this.#allowedRanges.addSubnet(...parsed.cidr);
    }
    this.#lookup = options.lookup ?? ((hostname) => dnsLookup(hostname, { all: true, verbatim: true }));
  }

  #allowedAddress(address: string): boolean {
    if (this.#allowPrivate || !privateAddress(address)) return true;
    const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    return this.#allowedRanges.check(address.split('%')[0]!, family);
  }

  /**
   * Resolves the URL's host and checks every address it resolves to (one private answer among
   * public ones refuses the host: the resolver could hand either to a later connection).
   * @throws WebhookTargetRefused with a message fit for the API caller.
   */
  async resolve(rawUrl: string): Promise<PinnedTarget> {
    const url = new URL(rawUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new WebhookTargetRefused('must be an http(s) URL');
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    const literal = isIP(host);
    let addresses: { address: string; family: number }[];
    if (literal !== 0) addresses = [{ address: host, family: literal }];
    else {
      try {
        addresses = await this.#lookup(host);
      } catch {
        throw new WebhookTargetRefused(`the host ${host} does not resolve`);
      }
      if (addresses.length === 0) throw new WebhookTargetRefused(`the host ${host} does not resolve`);
    }
    const hostAllowed = this.#allowPrivate || this.#allowedHosts.has(host);
    if (!hostAllowed && addresses.some((a) => !this.#allowedAddress(a.address))) {
      throw new WebhookTargetRefused(
        `${host} is a loopback, private, link-local or otherwise reserved address; webhooks may not target it unless the operator allows it (ROSTER_WEBHOOK_ALLOW_PRIVATE, ROSTER_WEBHOOK_ALLOWED_TARGETS)`,
      );
    }
    const first = addresses[0]!;
    return { url, address: first.address, family: first.family === 6 ? 6 : 4 };
  }
}

/**
 * POSTs `body` to a resolved target, connecting to the pinned address (TLS still verifies the
 * certificate against the URL's host name). The response body is not read. Resolves with the
 * status; rejects on any connection error or after `timeoutMs`.
 */
export function postToTarget(
  target: PinnedTarget,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<number> {
  const pinned: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all)
      (callback as (e: null, a: { address: string; family: number }[]) => void)(null, [
        { address: target.address, family: target.family },
      ]);
    else callback(null, target.address, target.family);
  };
  const request = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<number>((resolve, reject) => {
    const req = request(
      target.url,
      {
        method: 'POST',
        headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
        lookup: pinned,
        signal: AbortSignal.timeout(timeoutMs),
        // One request per connection: a pooled socket would skip the pinned lookup check.
        agent: false,
      },
      (response: IncomingMessage) => {
        resolve(response.statusCode ?? 0);
        response.destroy();
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
