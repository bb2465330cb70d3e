/**
 * bytes.ts - byte helpers: hex, base64url, UTF-8, concatenation, a
 * constant-time comparison and wiping.
 */
import { fail } from './errors.js';

export type Bytes = Uint8Array;

const HEX = '0123456789abcdef';

export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) {
    const v = b[i] as number;
    s += HEX[v >> 4]! + HEX[v & 15]!;
  }
  return s;
}

/** Strict: even length, [0-9a-fA-F] only. */
export function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0) fail('malformed', 'hex string of odd length');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexValue(s.charCodeAt(2 * i));
    const lo = hexValue(s.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) fail('malformed', 'not a hex string');
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Equality of public values (early exit). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Constant-time equality for secrets (tags, MACs): the time depends on the
 * length only, never on where the first difference is.
 */
export function ctEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number);
  return d === 0;
}

/** Overwrites a buffer that held a secret. */
export function wipe(...bufs: (Uint8Array | undefined | null)[]): void {
  for (const b of bufs) if (b) b.fill(0);
}

export function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== b.length) fail('invalid-argument', 'xor of different lengths');
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function utf8(s: string): Uint8Array {
  return enc.encode(s);
}

/** Strict UTF-8 decoding: invalid sequences are an error, not U+FFFD. */
export function fromUtf8(b: Uint8Array): string {
  try {
    return dec.decode(b);
  } catch {
    return fail('malformed', 'invalid UTF-8');
  }
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** base64url without padding (RFC 4648 section 5). */
export function toBase64url(b: Uint8Array): string {
  let s = '';
  let i = 0;
  for (; i + 3 <= b.length; i += 3) {
    const v = ((b[i] as number) << 16) | ((b[i + 1] as number) << 8) | (b[i + 2] as number);
    s += B64URL[v >> 18]! + B64URL[(v >> 12) & 63]! + B64URL[(v >> 6) & 63]! + B64URL[v & 63]!;
  }
  const rest = b.length - i;
  if (rest === 1) {
    const v = (b[i] as number) << 16;
    s += B64URL[v >> 18]! + B64URL[(v >> 12) & 63]!;
  } else if (rest === 2) {
    const v = ((b[i] as number) << 16) | ((b[i + 1] as number) << 8);
    s += B64URL[v >> 18]! + B64URL[(v >> 12) & 63]! + B64URL[(v >> 6) & 63]!;
  }
  return s;
}

/**
 * Strict base64url without padding: only the 64 characters, no length of
 * 1 mod 4, and the unused low bits of the last character must be zero (one
 * byte string has exactly one encoding).
 */
export function fromBase64url(s: string): Uint8Array {
  if (s.length % 4 === 1) fail('malformed', 'base64url of impossible length');
  const out = new Uint8Array(Math.floor((s.length * 6) / 8));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < s.length; i++) {
    const v = B64URL.indexOf(s[i]!);
    if (v < 0) fail('malformed', 'not base64url');
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
      acc &= (1 << bits) - 1;
    }
  }
  if (acc !== 0) fail('malformed', 'non-canonical base64url (trailing bits set)');
  return out;
}

/** Big-endian unsigned integer of `len` bytes. */
export function uintBytes(v: number, len: number): Uint8Array {
  if (!Number.isSafeInteger(v) || v < 0) fail('invalid-argument', 'not an unsigned integer');
  const out = new Uint8Array(len);
  let x = v;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = x % 256;
    x = Math.floor(x / 256);
  }
  if (x !== 0) fail('invalid-argument', `integer does not fit ${len} bytes`);
  return out;
}
