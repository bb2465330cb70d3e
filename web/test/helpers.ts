/**
 * test/helpers.ts - shared test plumbing: WebCrypto on Node 18, the vector
 * files, and the import of the RFCs' FIXED private keys. Importing a known
 * private key is a test-only operation: the library itself only ever
 * generates non-extractable keys.
 */
import { readFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import { fromHex, toBase64url } from '../src/protocol/bytes.js';

// Node 18 has WebCrypto only as require('node:crypto').webcrypto; 19+ also as globalThis.crypto.
if ((globalThis as { crypto?: unknown }).crypto === undefined) {
  Object.defineProperty(globalThis, 'crypto', { value: webcrypto, configurable: true });
}

const vectorsDir = process.env['CLOISTER_VECTORS'] ?? new URL('../../../tests/vectors/', import.meta.url).pathname;

export function loadVectors(name: string): unknown {
  return JSON.parse(readFileSync(`${vectorsDir.replace(/\/?$/, '/')}${name}`, 'utf8')) as unknown;
}

/** Narrowing accessors for the JSON vectors (no `any`). */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function obj(v: unknown, what = 'object'): { [k: string]: Json } {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${what}: not an object`);
  return v as { [k: string]: Json };
}

export function arr(v: unknown, what = 'array'): Json[] {
  if (!Array.isArray(v)) throw new Error(`${what}: not an array`);
  return v as Json[];
}

export function str(v: unknown, what = 'string'): string {
  if (typeof v !== 'string') throw new Error(`${what}: not a string`);
  return v;
}

export function hx(o: { [k: string]: Json }, key: string): Uint8Array {
  return fromHex(str(o[key], key));
}

export function subtle(): SubtleCrypto {
  return (globalThis as unknown as { crypto: Crypto }).crypto.subtle;
}

/** TEST ONLY: a P-256 private key from fixed d, x, y (JWK import). */
export async function importP256Private(d: Uint8Array, x: Uint8Array, y: Uint8Array, use: 'ECDH' | 'ECDSA'): Promise<CryptoKey> {
  const jwk: JsonWebKey = { kty: 'EC', crv: 'P-256', d: toBase64url(d), x: toBase64url(x), y: toBase64url(y), ext: false };
  return subtle().importKey('jwk', jwk, { name: use, namedCurve: 'P-256' }, false, use === 'ECDH' ? ['deriveBits'] : ['sign']);
}

/** TEST ONLY: an X25519 or Ed25519 private key from fixed bytes. */
export async function importOkpPrivate(d: Uint8Array, x: Uint8Array, crv: 'X25519' | 'Ed25519'): Promise<CryptoKey> {
  const jwk: JsonWebKey = { kty: 'OKP', crv, d: toBase64url(d), x: toBase64url(x), ext: false };
  return subtle().importKey('jwk', jwk, { name: crv }, false, crv === 'X25519' ? ['deriveBits'] : ['sign']);
}

/** Does this platform's WebCrypto have X25519 and Ed25519 (suite 0)? */
export async function hasSuite0(): Promise<boolean> {
  try {
    await subtle().generateKey({ name: 'X25519' }, false, ['deriveBits']);
    await subtle().generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
    return true;
  } catch {
    return false;
  }
}
