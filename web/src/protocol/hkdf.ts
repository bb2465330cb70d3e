/**
 * hkdf.ts - HMAC-SHA-256 and HKDF-SHA-256 (RFC 5869) on WebCrypto.
 *
 * EDHOC uses HKDF-Extract and HKDF-Expand separately (EDHOC_Extract,
 * EDHOC_Expand); WebCrypto's HKDF only offers both in one, so both steps
 * are written here on WebCrypto's HMAC exactly as RFC 5869 section 2.
 * An empty salt is the HashLen zero bytes of RFC 5869 (WebCrypto refuses
 * zero-length HMAC keys; HMAC pads keys with zeros, so they are the same).
 */
import { concat, wipe } from './bytes.js';
import { fail } from './errors.js';
import { buf, subtle, wc } from './webcrypto.js';

export const HASH_LEN = 32;

export async function hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = key.length === 0 ? new Uint8Array(HASH_LEN) : key;
  const s = subtle();
  const ck = await wc('HMAC key import', () => s.importKey('raw', buf(k), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']));
  return new Uint8Array(await wc('HMAC', () => s.sign('HMAC', ck, buf(data))));
}

/** HKDF-Extract(salt, IKM) = HMAC-Hash(salt, IKM). */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Promise<Uint8Array> {
  return hmacSha256(salt, ikm);
}

/** HKDF-Expand(PRK, info, L), L <= 255 * HashLen. */
export async function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array> {
  if (!Number.isInteger(length) || length < 0 || length > 255 * HASH_LEN) fail('invalid-argument', 'HKDF-Expand length out of range');
  const out = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  for (let i = 1, o = 0; o < length; i++) {
    const input = concat(t, info, new Uint8Array([i]));
    const next = await hmacSha256(prk, input);
    wipe(t, input);
    t = next;
    out.set(t.subarray(0, Math.min(HASH_LEN, length - o)), o);
    o += HASH_LEN;
  }
  wipe(t);
  return out;
}

/** HKDF(salt, IKM, info, L) = Expand(Extract(salt, IKM), info, L). */
export async function hkdf(salt: Uint8Array, ikm: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array> {
  const prk = await hkdfExtract(salt, ikm);
  try {
    return await hkdfExpand(prk, info, length);
  } finally {
    wipe(prk);
  }
}
