/**
 * x509.ts - a minimal, strict DER reader for the certificates of Cloister's
 * PKI (core/pki/pki.h) and the issuance check the CLI runs on the core's
 * credential (cli/session.c peer_cred: identity and core CA both issued by
 * the pinned owner root, the CA an intermediate with pathlen 0, the
 * identity a leaf).
 *
 * Why our own reader: the profile is fixed (v3, P-256 keys, ecdsa-with-SHA256,
 * five extensions) and a reader for exactly those fields is short enough to
 * review, where a general X.509 library brings ASN.1 schema machinery and
 * lenient parsing. What is refused (like cl_pki_cert_parse): anything but
 * DER (minimal definite lengths, DER booleans and integers), versions other
 * than 3, other signature or key algorithms, compressed points or points off
 * the curve, issuer/subject unique IDs, duplicate or unknown critical
 * extensions, a missing or repeated CN, more than one OU, non-RFC 5280 times,
 * trailing bytes.
 */
import { bytesEqual, fromBase64url, fromUtf8, toHex, utf8 } from './bytes.js';
import { p256CheckPoint, ecdsaDerToRaw, SUITE_2 } from './ec.js';
import { fail } from './errors.js';
import { sha256 } from './webcrypto.js';

const OID_ECDSA_SHA256 = '2a8648ce3d040302';
const OID_EC_PUBLIC_KEY = '2a8648ce3d0201';
const OID_P256 = '2a8648ce3d030107';
const OID_CN = '550403';
const OID_OU = '55040b';
const OID_BASIC_CONSTRAINTS = '551d13';
const OID_KEY_USAGE = '551d0f';
const OID_EXT_KEY_USAGE = '551d25';
const OID_SKI = '551d0e';
const OID_AKI = '551d23';

export const MAX_CERT = 2048;

export interface Certificate {
  der: Uint8Array;
  tbs: Uint8Array; // the signed TBSCertificate (header included)
  serial: Uint8Array;
  issuer: Uint8Array; // the issuer Name, DER
  subject: Uint8Array; // the subject Name, DER
  cn: string;
  ou: string | null;
  notBefore: number; // Unix seconds
  notAfter: number;
  publicKey: Uint8Array; // P-256 uncompressed point, 65 bytes
  isCa: boolean;
  pathLen: number | null; // null when absent
  keyUsage: number | null; // bits as in the DER BIT STRING, bit 0 = digitalSignature; null when absent
  subjectKeyId: Uint8Array | null;
  authorityKeyId: Uint8Array | null;
  signature: Uint8Array; // raw r || s
  selfIssued: boolean;
}

export const KU_DIGITAL_SIGNATURE = 1 << 0;
export const KU_KEY_CERT_SIGN = 1 << 5;

interface Tlv {
  tag: number;
  start: number; // header start
  body: number; // content start
  end: number; // content end
}

class Der {
  constructor(
    private readonly b: Uint8Array,
    private pos: number,
    private readonly end: number,
  ) {}

  atEnd(): boolean {
    return this.pos >= this.end;
  }

  peekTag(): number {
    return this.pos < this.end ? (this.b[this.pos] as number) : -1;
  }

  next(expectTag?: number, what = 'element'): Tlv {
    const b = this.b;
    const start = this.pos;
    if (start + 2 > this.end) fail('certificate', `DER: truncated ${what}`);
    const tag = b[start] as number;
    if ((tag & 0x1f) === 0x1f) fail('certificate', 'DER: high tag numbers are not used here');
    if (expectTag !== undefined && tag !== expectTag) fail('certificate', `DER: ${what} expected (tag 0x${expectTag.toString(16)}, got 0x${tag.toString(16)})`);
    let len = b[start + 1] as number;
    let p = start + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0) fail('certificate', 'DER: indefinite length');
      if (n > 3 || p + n > this.end) fail('certificate', 'DER: length too large');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (b[p + i] as number);
      if (b[p] === 0 || len < 128) fail('certificate', 'DER: non-minimal length');
      p += n;
    }
    if (p + len > this.end) fail('certificate', `DER: ${what} beyond its container`);
    this.pos = p + len;
    return { tag, start, body: p, end: p + len };
  }

  sub(t: Tlv): Der {
    return new Der(this.b, t.body, t.end);
  }

  bytes(t: Tlv): Uint8Array {
    return this.b.subarray(t.body, t.end);
  }

  whole(t: Tlv): Uint8Array {
    return this.b.subarray(t.start, t.end);
  }

  done(what: string): void {
    if (this.pos !== this.end) fail('certificate', `DER: trailing data in ${what}`);
  }
}

function oidHex(d: Der, what: string): string {
  const t = d.next(0x06, what);
  return toHex(d.bytes(t));
}

/** A DER INTEGER's content: minimal two's complement, must be positive (or zero). */
function positiveInteger(d: Der, what: string): Uint8Array {
  const t = d.next(0x02, what);
  const v = d.bytes(t);
  if (v.length === 0) fail('certificate', `DER: empty ${what}`);
  if (v.length > 1 && ((v[0] === 0 && ((v[1] as number) & 0x80) === 0) || (v[0] === 0xff && ((v[1] as number) & 0x80) !== 0)))
    fail('certificate', `DER: non-minimal ${what}`);
  if ((v[0] as number) & 0x80) fail('certificate', `DER: negative ${what}`);
  return v;
}

function smallInt(v: Uint8Array): number {
  if (v.length > 4) fail('certificate', 'DER: integer too large');
  let x = 0;
  for (const b of v) x = x * 256 + b;
  return x;
}

function digits(s: string, from: number, n: number): number {
  let v = 0;
  for (let i = from; i < from + n; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) fail('certificate', 'DER: bad time');
    v = v * 10 + (c - 48);
  }
  return v;
}

/** UTCTime (YYMMDDHHMMSSZ, years 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ, from 2050) -> Unix seconds. */
function readTime(d: Der): number {
  const t = d.next(undefined, 'time');
  const s = String.fromCharCode(...d.bytes(t));
  let year: number;
  let rest: number;
  if (t.tag === 0x17) {
    if (s.length !== 13) fail('certificate', 'DER: UTCTime must be YYMMDDHHMMSSZ');
    const yy = digits(s, 0, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    rest = 2;
  } else if (t.tag === 0x18) {
    if (s.length !== 15) fail('certificate', 'DER: GeneralizedTime must be YYYYMMDDHHMMSSZ');
    year = digits(s, 0, 4);
    if (year < 2050) fail('certificate', 'DER: GeneralizedTime before 2050 (RFC 5280 wants UTCTime)');
    rest = 4;
  } else return fail('certificate', 'DER: a time is expected');
  if (s[s.length - 1] !== 'Z') fail('certificate', 'DER: time not in UTC');
  const mo = digits(s, rest, 2);
  const da = digits(s, rest + 2, 2);
  const h = digits(s, rest + 4, 2);
  const mi = digits(s, rest + 6, 2);
  const se = digits(s, rest + 8, 2);
  const ms = Date.UTC(year, mo - 1, da, h, mi, se);
  const back = new Date(ms);
  if (mo < 1 || mo > 12 || back.getUTCDate() !== da || back.getUTCMonth() !== mo - 1 || h > 23 || mi > 59 || se > 59)
    fail('certificate', 'DER: invalid date');
  return ms / 1000;
}

function readName(d: Der, what: string): { raw: Uint8Array; cn: string | null; ou: string | null; cnCount: number; ouCount: number } {
  const t = d.next(0x30, what);
  const nd = d.sub(t);
  let cn: string | null = null;
  let ou: string | null = null;
  let cnCount = 0;
  let ouCount = 0;
  while (!nd.atEnd()) {
    const set = nd.next(0x31, `${what} RDN`);
    const sd = nd.sub(set);
    if (sd.atEnd()) fail('certificate', `DER: empty RDN in ${what}`);
    while (!sd.atEnd()) {
      const atv = sd.next(0x30, `${what} attribute`);
      const ad = sd.sub(atv);
      const oid = oidHex(ad, 'attribute type');
      const vt = ad.next(undefined, 'attribute value');
      ad.done('attribute');
      if (oid === OID_CN || oid === OID_OU) {
        if (vt.tag !== 0x0c && vt.tag !== 0x13) fail('certificate', 'CN/OU must be a UTF8String or PrintableString');
        const text = fromUtf8(ad.bytes(vt));
        if (text.includes('\u0000') || text.length === 0) fail('certificate', 'empty CN/OU or one with NUL');
        if (oid === OID_CN) {
          cn = text;
          cnCount++;
        } else {
          ou = text;
          ouCount++;
        }
      }
    }
  }
  return { raw: d.whole(t), cn, ou, cnCount, ouCount };
}

/** Parses a certificate of the Cloister profile strictly. Throws ProtocolError('certificate'). */
export function parseCertificate(der: Uint8Array): Certificate {
  if (der.length > MAX_CERT) fail('certificate', 'certificate larger than 2048 bytes');
  const top = new Der(der, 0, der.length);
  const certT = top.next(0x30, 'Certificate');
  top.done('the certificate');
  const c = top.sub(certT);
  const tbsT = c.next(0x30, 'TBSCertificate');
  const algT = c.next(0x30, 'signatureAlgorithm');
  const sigT = c.next(0x03, 'signatureValue');
  c.done('Certificate');
  const alg = c.sub(algT);
  if (oidHex(alg, 'signature algorithm') !== OID_ECDSA_SHA256) fail('certificate', 'signature algorithm is not ecdsa-with-SHA256');
  alg.done('signature algorithm (parameters must be absent)');
  const sigBits = c.bytes(sigT);
  if (sigBits.length < 2 || sigBits[0] !== 0) fail('certificate', 'DER: bad signature BIT STRING');
  const signature = ecdsaDerToRaw(sigBits.subarray(1));

  const t = c.sub(tbsT);
  const verT = t.next(0xa0, 'version');
  const vd = t.sub(verT);
  const ver = positiveInteger(vd, 'version');
  vd.done('version');
  if (ver.length !== 1 || ver[0] !== 2) fail('certificate', 'not an X.509 v3 certificate');
  const serial = positiveInteger(t, 'serialNumber');
  if (serial.length > 21) fail('certificate', 'serial number longer than 20 bytes');
  const innerAlgT = t.next(0x30, 'signature');
  if (!bytesEqual(t.whole(innerAlgT), c.whole(algT))) fail('certificate', 'the two signature algorithm fields differ');
  const issuer = readName(t, 'issuer');
  const valT = t.next(0x30, 'validity');
  const vald = t.sub(valT);
  const notBefore = readTime(vald);
  const notAfter = readTime(vald);
  vald.done('validity');
  const subject = readName(t, 'subject');
  if (subject.cnCount !== 1 || subject.cn === null) fail('certificate', 'the subject must have exactly one CN');
  if (subject.ouCount > 1) fail('certificate', 'the subject has more than one OU');
  if (utf8(subject.cn).length >= 64 || (subject.ou !== null && utf8(subject.ou).length >= 64)) fail('certificate', 'CN or OU too long');

  const spkiT = t.next(0x30, 'subjectPublicKeyInfo');
  const sd = t.sub(spkiT);
  const kaT = sd.next(0x30, 'key algorithm');
  const ka = sd.sub(kaT);
  if (oidHex(ka, 'key algorithm') !== OID_EC_PUBLIC_KEY || oidHex(ka, 'curve') !== OID_P256)
    fail('certificate', 'the key is not a P-256 key');
  ka.done('key algorithm');
  const pkT = sd.next(0x03, 'subjectPublicKey');
  sd.done('subjectPublicKeyInfo');
  const pkBits = sd.bytes(pkT);
  if (pkBits[0] !== 0) fail('certificate', 'DER: bad key BIT STRING');
  const publicKey = pkBits.slice(1);
  if (publicKey.length !== 65 || publicKey[0] !== 4) fail('certificate', 'the key is not an uncompressed P-256 point');
  try {
    p256CheckPoint(publicKey);
  } catch {
    fail('certificate', 'the certificate key is not on P-256');
  }

  let isCa = false;
  let pathLen: number | null = null;
  let keyUsage: number | null = null;
  let subjectKeyId: Uint8Array | null = null;
  let authorityKeyId: Uint8Array | null = null;
  if (t.peekTag() === 0x81 || t.peekTag() === 0x82) fail('certificate', 'unique identifiers are not accepted');
  if (!t.atEnd()) {
    const extsT = t.next(0xa3, 'extensions');
    const ed = t.sub(extsT);
    const seqT = ed.next(0x30, 'Extensions');
    ed.done('extensions');
    const list = ed.sub(seqT);
    const seen = new Set<string>();
    if (list.atEnd()) fail('certificate', 'empty extensions');
    while (!list.atEnd()) {
      const extT = list.next(0x30, 'Extension');
      const x = list.sub(extT);
      const oid = oidHex(x, 'extension id');
      if (seen.has(oid)) fail('certificate', 'duplicate extension');
      seen.add(oid);
      let critical = false;
      if (x.peekTag() === 0x01) {
        const bt = x.next(0x01, 'critical');
        const bv = x.bytes(bt);
        if (bv.length !== 1 || bv[0] !== 0xff) fail('certificate', 'DER: critical must be encoded only when TRUE');
        critical = true;
      }
      const valT = x.next(0x04, 'extnValue');
      x.done('Extension');
      const v = new Der(x.bytes(valT), 0, valT.end - valT.body);
      switch (oid) {
        case OID_BASIC_CONSTRAINTS: {
          const bcT = v.next(0x30, 'basicConstraints');
          v.done('basicConstraints');
          const bc = v.sub(bcT);
          if (bc.peekTag() === 0x01) {
            const b = bc.bytes(bc.next(0x01, 'cA'));
            if (b.length !== 1 || b[0] !== 0xff) fail('certificate', 'DER: cA must be encoded only when TRUE');
            isCa = true;
          }
          if (!bc.atEnd()) pathLen = smallInt(positiveInteger(bc, 'pathLenConstraint'));
          bc.done('basicConstraints');
          break;
        }
        case OID_KEY_USAGE: {
          const kuT = v.next(0x03, 'keyUsage');
          v.done('keyUsage');
          const kb = v.bytes(kuT);
          if (kb.length < 2 || kb.length > 3 || (kb[0] as number) > 7) fail('certificate', 'DER: bad keyUsage');
          let bits = 0;
          for (let i = 1; i < kb.length; i++)
            for (let j = 0; j < 8; j++) if (((kb[i] as number) >> (7 - j)) & 1) bits |= 1 << ((i - 1) * 8 + j);
          keyUsage = bits;
          break;
        }
        case OID_SKI: {
          subjectKeyId = v.bytes(v.next(0x04, 'subjectKeyIdentifier')).slice();
          v.done('subjectKeyIdentifier');
          break;
        }
        case OID_AKI: {
          const akT = v.next(0x30, 'authorityKeyIdentifier');
          v.done('authorityKeyIdentifier');
          const ak = v.sub(akT);
          while (!ak.atEnd()) {
            const f = ak.next(undefined, 'authorityKeyIdentifier field');
            if (f.tag === 0x80) authorityKeyId = ak.bytes(f).slice();
          }
          break;
        }
        case OID_EXT_KEY_USAGE:
          break; // not needed for the decisions below
        default:
          if (critical) fail('certificate', 'an unknown critical extension');
      }
    }
  }
  t.done('TBSCertificate');
  if (pathLen !== null && !isCa) fail('certificate', 'pathLenConstraint without cA');
  return {
    der,
    tbs: c.whole(tbsT).slice(),
    serial: serial.slice(),
    issuer: issuer.raw.slice(),
    subject: subject.raw.slice(),
    cn: subject.cn,
    ou: subject.ou,
    notBefore,
    notAfter,
    publicKey,
    isCa,
    pathLen,
    keyUsage,
    subjectKeyId,
    authorityKeyId,
    signature,
    selfIssued: bytesEqual(issuer.raw, subject.raw),
  };
}

/**
 * child was issued by issuer (as cl_pki_verify_issued): names chain, issuer
 * is a CA with keyCertSign, pathlen 0 forbids issuing CAs, AKI = issuer SKI
 * when both are present, the signature verifies, both valid at `now`
 * (Unix seconds; omitted: not checked).
 */
export async function verifyIssued(child: Certificate, issuer: Certificate, now?: number): Promise<void> {
  if (!bytesEqual(child.issuer, issuer.subject)) fail('certificate', `'${child.cn}' names another issuer than '${issuer.cn}'`);
  if (!issuer.isCa || issuer.keyUsage === null || (issuer.keyUsage & KU_KEY_CERT_SIGN) === 0)
    fail('certificate', `'${issuer.cn}' is not a CA that may sign certificates`);
  if (child.isCa && !child.selfIssued && issuer.pathLen === 0) fail('certificate', `'${issuer.cn}' may not issue CA certificates (pathlen 0)`);
  if (child.authorityKeyId !== null && issuer.subjectKeyId !== null && !bytesEqual(child.authorityKeyId, issuer.subjectKeyId))
    fail('certificate', `the authority key id of '${child.cn}' is not the key id of '${issuer.cn}'`);
  if (!(await SUITE_2.verify(issuer.publicKey, child.signature, child.tbs)))
    fail('certificate', `the signature on '${child.cn}' does not verify with the key of '${issuer.cn}'`);
  if (now !== undefined) {
    for (const c of [child, issuer])
      if (now < c.notBefore || now > c.notAfter) fail('certificate', `'${c.cn}' is expired or not yet valid`);
  }
}

/** A self-signed root CA whose self-signature verifies (cl_pki_check_root). */
export async function checkRoot(root: Certificate, now?: number): Promise<void> {
  if (!root.selfIssued) fail('certificate', `'${root.cn}' is not self-issued: not a root`);
  await verifyIssued(root, root, now);
}

/** COSE x5t with SHA-256/64: the first 8 bytes of SHA-256(DER). */
export async function thumbprint(der: Uint8Array): Promise<Uint8Array> {
  return (await sha256(der)).slice(0, 8);
}

/**
 * The core's credential as the CLI checks it (cli/session.c peer_cred): the
 * identity is a leaf and the CA an intermediate (pathlen 0), both issued by
 * the owner root, both optionally byte-for-byte equal to pinned ones.
 */
export async function verifyCoreCredential(
  identityDer: Uint8Array,
  caDer: Uint8Array,
  rootDer: Uint8Array,
  now: number | undefined,
  pins?: { identity?: Uint8Array | undefined; ca?: Uint8Array | undefined },
): Promise<{ identity: Certificate; ca: Certificate }> {
  const root = parseCertificate(rootDer);
  const identity = parseCertificate(identityDer);
  const ca = parseCertificate(caDer);
  if (identity.isCa) fail('certificate', "the core's identity certificate is a CA");
  if (!ca.isCa || ca.pathLen !== 0) fail('certificate', "the core's CA certificate is not an intermediate CA (pathlen 0)");
  await checkRoot(root, now);
  await verifyIssued(ca, root, now);
  await verifyIssued(identity, root, now);
  if (pins?.ca !== undefined && !bytesEqual(pins.ca, caDer)) fail('certificate', 'the core CA differs from the pinned one');
  if (pins?.identity !== undefined && !bytesEqual(pins.identity, identityDer)) fail('certificate', 'the core identity differs from the pinned one');
  return { identity, ca };
}

/** The DER of the first (or only) "CERTIFICATE" block of a PEM text. */
export function pemToDer(pem: string): Uint8Array {
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem);
  if (m === null) fail('certificate', 'no PEM certificate found');
  const b64 = m[1]!.replace(/\s+/g, '');
  if (b64.length % 4 !== 0) fail('certificate', 'bad PEM base64');
  return fromBase64url(b64.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'));
}
