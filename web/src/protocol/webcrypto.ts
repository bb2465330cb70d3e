/**
 * webcrypto.ts - access to WebCrypto (globalThis.crypto), the only crypto
 * provider of the library: AES (CBC and CTR, for CCM), SHA-256, HMAC, ECDH
 * and ECDSA on P-256 (and X25519 / Ed25519 where the platform has them).
 *
 * Browsers and Node >= 19 have globalThis.crypto; on Node 18 the caller (the
 * test setup does) assigns require('node:crypto').webcrypto to it first.
 * Nothing here imports a Node module, so the same code runs in a browser.
 */
import { fail } from './errors.js';

export function subtle(): SubtleCrypto {
  const c: Crypto | undefined = (globalThis as { crypto?: Crypto }).crypto;
  if (c === undefined || c.subtle === undefined)
    fail('crypto', 'WebCrypto (globalThis.crypto.subtle) is not available: a secure context (https or localhost) is required');
  return c.subtle;
}

export function randomBytes(n: number): Uint8Array {
  const c: Crypto | undefined = (globalThis as { crypto?: Crypto }).crypto;
  if (c === undefined) fail('crypto', 'WebCrypto is not available');
  const out = new Uint8Array(n);
  c.getRandomValues(out);
  return out;
}

/** WebCrypto takes BufferSource; a view on exactly these bytes. */
export function buf(b: Uint8Array): Uint8Array<ArrayBuffer> {
  if (b.buffer instanceof ArrayBuffer && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength)
    return b as Uint8Array<ArrayBuffer>;
  return new Uint8Array(b) as Uint8Array<ArrayBuffer>;
}

/** Runs a WebCrypto call, turning its DOMException into a ProtocolError of `code`. */
export async function wc<T>(what: string, p: () => Promise<T>, code: 'crypto' | 'auth' | 'malformed' = 'crypto'): Promise<T> {
  try {
    return await p();
  } catch (e: unknown) {
    const name = e instanceof Error ? e.name : 'error';
    return fail(code, `${what} failed (${name})`);
  }
}

export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await wc('SHA-256', () => subtle().digest('SHA-256', buf(data))));
}
