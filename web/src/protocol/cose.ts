/**
 * cose.ts - the COSE (RFC 9052) structures Cloister needs: the Enc_structure
 * of COSE_Encrypt0 (OSCORE's AAD, EDHOC's A_3 / A_4), the Sig_structure of
 * COSE_Sign1 (EDHOC's "Signature1" input), and COSE_Encrypt0 / COSE_Sign1
 * messages for checking against the COSE examples.
 */
import { AesCcm, COSE_CCM } from './ccm.js';
import {
  CborDecoder,
  CborTag,
  type CborInput,
  type CborValue,
  MAJOR_MAP,
  asArray,
  asBytes,
  asMap,
  decode,
  encode,
} from './cbor.js';
import { fail } from './errors.js';
import type { EdhocSuite } from './ec.js';

export const COSE_TAG_ENCRYPT0 = 16;
export const COSE_TAG_SIGN1 = 18;

export const HDR_ALG = 1;
export const HDR_KID = 4;
export const HDR_IV = 5;
export const HDR_PARTIAL_IV = 6;
export const HDR_KCCS = 14;
export const HDR_X5CHAIN = 33;
export const HDR_X5T = 34;

export const ALG_ES256 = -7;
export const ALG_EDDSA = -8;
export const ALG_SHA256_64 = -15;

/** Enc_structure = ["Encrypt0", protected: bstr, external_aad: bstr] */
export function encStructure(protectedHeader: Uint8Array, externalAad: Uint8Array): Uint8Array {
  return encode(['Encrypt0', protectedHeader, externalAad]);
}

/** Sig_structure = ["Signature1", body_protected: bstr, external_aad: bstr, payload: bstr] */
export function sigStructure(protectedHeader: Uint8Array, externalAad: Uint8Array, payload: Uint8Array): Uint8Array {
  return encode(['Signature1', protectedHeader, externalAad, payload]);
}

/** The value of a header label in an encoded header map (empty bstr = no headers). */
export function headerGet(encodedMap: Uint8Array, label: number): CborValue | undefined {
  if (encodedMap.length === 0) return undefined;
  return asMap(decode(encodedMap), 'COSE header').get(label);
}

export interface CoseEncrypt0 {
  protectedHeader: Uint8Array; // the bstr's content (encoded map or empty)
  unprotected: Map<CborValue, CborValue>;
  ciphertext: Uint8Array;
}

export interface CoseSign1 {
  protectedHeader: Uint8Array;
  unprotected: Map<CborValue, CborValue>;
  payload: Uint8Array;
  signature: Uint8Array;
}

function untag(v: CborValue, tag: number, what: string): CborValue[] {
  let x = v;
  if (x instanceof CborTag) {
    if (x.tag !== tag) fail('malformed', `${what}: wrong CBOR tag ${String(x.tag)}`);
    x = x.value;
  }
  const a = asArray(x, what);
  return a;
}

function protectedBytes(v: CborValue, what: string): Uint8Array {
  const p = asBytes(v, `${what} protected header`);
  if (p.length > 0) {
    const d = new CborDecoder(p);
    if (d.peekMajor() !== MAJOR_MAP) fail('malformed', `${what}: the protected header is not a map`);
    d.item();
    if (!d.atEnd()) fail('malformed', `${what}: trailing bytes in the protected header`);
  }
  return p;
}

export function decodeEncrypt0(msg: Uint8Array): CoseEncrypt0 {
  const a = untag(decode(msg), COSE_TAG_ENCRYPT0, 'COSE_Encrypt0');
  if (a.length !== 3) fail('malformed', 'COSE_Encrypt0 must have 3 elements');
  return {
    protectedHeader: protectedBytes(a[0], 'COSE_Encrypt0'),
    unprotected: asMap(a[1], 'COSE_Encrypt0 unprotected header'),
    ciphertext: asBytes(a[2], 'COSE_Encrypt0 ciphertext'),
  };
}

export function encodeEncrypt0(m: CoseEncrypt0, tagged = true): Uint8Array {
  const arr: CborInput = [m.protectedHeader, m.unprotected, m.ciphertext];
  return encode(tagged ? new CborTag(COSE_TAG_ENCRYPT0, arr as CborValue) : arr);
}

export function decodeSign1(msg: Uint8Array): CoseSign1 {
  const a = untag(decode(msg), COSE_TAG_SIGN1, 'COSE_Sign1');
  if (a.length !== 4) fail('malformed', 'COSE_Sign1 must have 4 elements');
  return {
    protectedHeader: protectedBytes(a[0], 'COSE_Sign1'),
    unprotected: asMap(a[1], 'COSE_Sign1 unprotected header'),
    payload: asBytes(a[2], 'COSE_Sign1 payload'),
    signature: asBytes(a[3], 'COSE_Sign1 signature'),
  };
}

/**
 * Decrypts a COSE_Encrypt0 with an AES-CCM algorithm (alg in the protected
 * header) and a full IV in the unprotected header.
 */
export async function decryptEncrypt0(m: CoseEncrypt0, key: Uint8Array, externalAad: Uint8Array): Promise<Uint8Array> {
  const alg = headerGet(m.protectedHeader, HDR_ALG);
  const p = typeof alg === 'number' ? COSE_CCM.get(alg) : undefined;
  if (p === undefined) fail('unsupported', 'COSE_Encrypt0: not an AES-CCM algorithm');
  if (key.length !== p.keyLength) fail('invalid-argument', 'COSE_Encrypt0: wrong key length for the algorithm');
  const iv = m.unprotected.get(HDR_IV);
  if (!(iv instanceof Uint8Array)) fail('unsupported', 'COSE_Encrypt0: no IV');
  const ccm = await AesCcm.create(key, p);
  return ccm.decrypt(iv, m.ciphertext, encStructure(m.protectedHeader, externalAad));
}

/** Verifies a COSE_Sign1 with the suite's signature algorithm (ES256 or EdDSA by the protected alg). */
export async function verifySign1(m: CoseSign1, suite: EdhocSuite, publicKey: Uint8Array, externalAad: Uint8Array): Promise<boolean> {
  const alg = headerGet(m.protectedHeader, HDR_ALG);
  const want = suite.id === 2 ? ALG_ES256 : ALG_EDDSA;
  if (alg !== want) return false;
  return suite.verify(publicKey, m.signature, sigStructure(m.protectedHeader, externalAad, m.payload));
}
