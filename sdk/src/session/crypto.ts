/**
 * The signature primitives the session verifier needs, behind one small interface: WebCrypto
 * everywhere (Node, Bun, Deno, edge runtimes), `node:crypto` in `@roster/sdk/express` (Node only),
 * where verification is synchronous and has no per-call hop to a worker thread.
 */

/** The algorithms Roster signs with. Anything else (`none`, `HS256`, `RS256`…) is refused. */
export type SessionAlg = 'ES256' | 'EdDSA';

export const SESSION_ALGS: ReadonlySet<string> = new Set<SessionAlg>(['ES256', 'EdDSA']);

/** A public JWK as published in Roster's JWKS. */
export interface PublicJwk {
  kty: string;
  kid?: string;
  alg?: string;
  use?: string;
  crv?: string;
  x?: string;
  y?: string;
}

export interface CryptoBackend<K = unknown> {
  importKey(jwk: PublicJwk, alg: SessionAlg): Promise<K>;
  /** Verifies `signature` over the ASCII bytes of `signingInput` (`<header>.<payload>`). */
  verify(alg: SessionAlg, key: K, signingInput: string, signature: Uint8Array): boolean | Promise<boolean>;
  /** Decodes base64url (no padding); throws on anything else. */
  base64url(text: string): Uint8Array;
  /** Decodes base64url to a UTF-8 string. */
  base64urlText(text: string): string;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

function decodeBase64url(text: string): Uint8Array {
  if (!BASE64URL.test(text) || text.length % 4 === 1) throw new TypeError('not base64url');
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** WebCrypto: the default, in every runtime with `globalThis.crypto.subtle`. */
export const webCrypto: CryptoBackend<CryptoKey> = {
  importKey(jwk, alg) {
    const algorithm =
      alg === 'ES256' ? { name: 'ECDSA', namedCurve: 'P-256' } : ({ name: 'Ed25519' } as Algorithm);
    return crypto.subtle.importKey('jwk', jwk as JsonWebKey, algorithm, false, ['verify']);
  },
  verify(alg, key, signingInput, signature) {
    const algorithm = alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' };
    return crypto.subtle.verify(algorithm, key, signature as BufferSource, encoder.encode(signingInput));
  },
  base64url: decodeBase64url,
  base64urlText: (text) => decoder.decode(decodeBase64url(text)),
};
