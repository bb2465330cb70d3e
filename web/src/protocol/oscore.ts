/**
 * oscore.ts - OSCORE (RFC 8613): security context derivation (section 3.2),
 * message protection of requests and responses (sections 5, 8), the OSCORE
 * option (6.1), the replay window (7.4), and the HTTP mapping of the option
 * (section 11: the OSCORE header field) exactly as cloisterd expects it
 * (lib/oscore.c: cl_oscore_http_header_encode/decode).
 *
 * Messages in, messages out: protect and unprotect take and return CoAP
 * messages (coap.ts); over HTTP the session maps the OSCORE option to the
 * OSCORE header and the payload to the body.
 *
 * Option classes: Uri-Host, Uri-Port, Proxy-Scheme, Hop-Limit and EDHOC are
 * outer (class U); Observe is both; everything else, unknown options
 * included, is inner (class E), so nothing unknown leaks. Proxy-Uri is
 * refused (this client never sends one).
 *
 * Nonces use the Sender ID of whoever generated the Partial IV: a response
 * with its own Partial IV is protected with the server's Sender ID (RFC 8613
 * C.8). A request protects at most one response (or, for an Observe
 * registration, notifications with increasing Partial IVs).
 *
 * Keys: Sender and Recipient Key are imported into WebCrypto as
 * non-extractable AES keys at derivation and their bytes wiped.
 */
import { bytesEqual, concat, fromBase64url, toBase64url, wipe } from './bytes.js';
import { AesCcm } from './ccm.js';
import { bstr, encode } from './cbor.js';
import {
  type CoapMessage,
  type CoapOption,
  OPT_EDHOC,
  OPT_HOP_LIMIT,
  OPT_OBSERVE,
  OPT_OSCORE,
  OPT_PROXY_SCHEME,
  OPT_PROXY_URI,
  OPT_URI_HOST,
  OPT_URI_PORT,
  CHANGED,
  CONTENT,
  FETCH,
  POST,
  decodeOptions,
  encodeOptions,
  isRequestCode,
} from './coap.js';
import { encStructure } from './cose.js';
import { fail } from './errors.js';
import { hkdf } from './hkdf.js';

export const AEAD_AES_CCM_16_64_128 = 10;
const KEY_LEN = 16;
const NONCE_LEN = 13;
const TAG_LEN = 8;
const MAX_ID_LEN = NONCE_LEN - 6; // 7
const MAX_SSN = 2 ** 40 - 1;

export interface OscoreParams {
  masterSecret: Uint8Array;
  masterSalt?: Uint8Array; // default: empty
  senderId: Uint8Array;
  recipientId: Uint8Array;
  idContext?: Uint8Array | null; // absent/null: no ID Context (CBOR nil in the info)
  aeadAlgorithm?: number; // 10 (AES-CCM-16-64-128) only
  replayWindow?: number; // 1..64, default 32
  /** Send the ID Context as kid context in requests (default: when there is one). */
  sendKidContext?: boolean;
}

export interface OscoreKeys {
  senderKey: Uint8Array;
  recipientKey: Uint8Array;
  commonIv: Uint8Array;
}

/** info = [id, id_context, alg_aead, type, L] (RFC 8613 section 3.2.1). */
export function oscoreInfo(id: Uint8Array, idContext: Uint8Array | null, alg: number, type: 'Key' | 'IV', length: number): Uint8Array {
  return encode([id, idContext, alg, type, length]);
}

/** The three derived values; the caller wipes them (OscoreContext does). */
export async function deriveOscoreKeys(p: OscoreParams): Promise<OscoreKeys> {
  const alg = p.aeadAlgorithm ?? AEAD_AES_CCM_16_64_128;
  if (alg !== AEAD_AES_CCM_16_64_128) fail('unsupported', 'OSCORE: only AEAD algorithm 10 (AES-CCM-16-64-128)');
  if (p.senderId.length > MAX_ID_LEN || p.recipientId.length > MAX_ID_LEN) fail('invalid-argument', 'OSCORE: Sender/Recipient ID longer than 7 bytes');
  if (bytesEqual(p.senderId, p.recipientId)) fail('invalid-argument', 'OSCORE: Sender ID equals Recipient ID');
  const salt = p.masterSalt ?? new Uint8Array(0);
  const ctx = p.idContext ?? null;
  return {
    senderKey: await hkdf(salt, p.masterSecret, oscoreInfo(p.senderId, ctx, alg, 'Key', KEY_LEN), KEY_LEN),
    recipientKey: await hkdf(salt, p.masterSecret, oscoreInfo(p.recipientId, ctx, alg, 'Key', KEY_LEN), KEY_LEN),
    commonIv: await hkdf(salt, p.masterSecret, oscoreInfo(new Uint8Array(0), ctx, alg, 'IV', NONCE_LEN), NONCE_LEN),
  };
}

/** AEAD nonce (section 5.2): size of ID || ID left-padded || PIV left-padded, XOR Common IV. */
export function oscoreNonce(commonIv: Uint8Array, id: Uint8Array, piv: Uint8Array): Uint8Array {
  if (id.length > MAX_ID_LEN || piv.length > 5) fail('invalid-argument', 'OSCORE: ID or Partial IV too long for the nonce');
  const n = new Uint8Array(NONCE_LEN);
  n[0] = id.length;
  n.set(id, NONCE_LEN - 5 - id.length);
  n.set(piv, NONCE_LEN - piv.length);
  for (let i = 0; i < NONCE_LEN; i++) n[i] = (n[i] as number) ^ (commonIv[i] as number);
  return n;
}

/** aad_array = [oscore_version: 1, algorithms: [alg_aead], request_kid, request_piv, options: h''] */
export function oscoreAadArray(requestKid: Uint8Array, requestPiv: Uint8Array): Uint8Array {
  return encode([1, [AEAD_AES_CCM_16_64_128], requestKid, requestPiv, new Uint8Array(0)]);
}

/** The AEAD's additional data: Enc_structure ["Encrypt0", h'', bstr(aad_array)]. */
export function oscoreAad(requestKid: Uint8Array, requestPiv: Uint8Array): Uint8Array {
  return encStructure(new Uint8Array(0), oscoreAadArray(requestKid, requestPiv));
}

/** Partial IV of a sequence number: the shortest big-endian bytes, 0 -> 0x00. */
export function pivOf(seq: number): Uint8Array {
  if (!Number.isSafeInteger(seq) || seq < 0 || seq > MAX_SSN) fail('limit', 'OSCORE: sequence number out of range');
  const out: number[] = [];
  let x = seq;
  do {
    out.unshift(x % 256);
    x = Math.floor(x / 256);
  } while (x > 0);
  return new Uint8Array(out);
}

export function seqOf(piv: Uint8Array): number {
  if (piv.length === 0 || piv.length > 5) fail('malformed', 'OSCORE: Partial IV of 1..5 bytes expected');
  if (piv.length > 1 && piv[0] === 0) fail('malformed', 'OSCORE: Partial IV with a leading zero');
  let v = 0;
  for (const b of piv) v = v * 256 + b;
  return v;
}

// ------------------------------------------------------------------ the OSCORE option

export interface OscoreOption {
  piv?: Uint8Array;
  kid?: Uint8Array;
  kidContext?: Uint8Array;
}

export function encodeOscoreOption(o: OscoreOption): Uint8Array {
  const n = o.piv?.length ?? 0;
  if (n > 5) fail('invalid-argument', 'OSCORE: Partial IV longer than 5 bytes');
  const flags = n | (o.kid !== undefined ? 0x08 : 0) | (o.kidContext !== undefined ? 0x10 : 0);
  if (flags === 0) return new Uint8Array(0);
  const parts: Uint8Array[] = [new Uint8Array([flags])];
  if (o.piv !== undefined) parts.push(o.piv);
  if (o.kidContext !== undefined) {
    if (o.kidContext.length > 255) fail('invalid-argument', 'OSCORE: kid context too long');
    parts.push(new Uint8Array([o.kidContext.length]), o.kidContext);
  }
  if (o.kid !== undefined) parts.push(o.kid);
  return concat(...parts);
}

/** Strict: reserved bits and n = 6, 7 refused; a present option with all flags zero refused. */
export function decodeOscoreOption(v: Uint8Array): OscoreOption {
  if (v.length === 0) return {};
  const f = v[0] as number;
  if ((f & 0xe0) !== 0) fail('malformed', 'OSCORE option: reserved flag bits set');
  if (f === 0) fail('malformed', 'OSCORE option: flags all zero in a non-empty option');
  const n = f & 7;
  if (n > 5) fail('malformed', 'OSCORE option: reserved Partial IV length');
  let p = 1;
  const out: OscoreOption = {};
  if (n > 0) {
    if (p + n > v.length) fail('malformed', 'OSCORE option: truncated Partial IV');
    out.piv = v.slice(p, p + n);
    p += n;
  }
  if (f & 0x10) {
    if (p >= v.length) fail('malformed', 'OSCORE option: truncated kid context');
    const s = v[p++] as number;
    if (p + s > v.length) fail('malformed', 'OSCORE option: truncated kid context');
    out.kidContext = v.slice(p, p + s);
    p += s;
  }
  if (f & 0x08) out.kid = v.slice(p);
  else if (p !== v.length) fail('malformed', 'OSCORE option: trailing bytes');
  return out;
}

// ------------------------------------------------------------------ HTTP mapping (section 11)

/** OSCORE option value -> HTTP OSCORE header: "AA" for the empty option, else base64url without padding. */
export function oscoreHeaderEncode(option: Uint8Array): string {
  return option.length === 0 ? 'AA' : toBase64url(option);
}

/** HTTP OSCORE header -> option value (strict, like cloisterd: 2*base64url-char, canonical, "AA" = empty). */
export function oscoreHeaderDecode(h: string): Uint8Array {
  if (h.length < 2 || h.length > 400) fail('malformed', 'OSCORE header of impossible length');
  if (h === 'AA') return new Uint8Array(0);
  return fromBase64url(h);
}

// ------------------------------------------------------------------ replay window

/** Sliding window over received sequence numbers (RFC 8613 section 7.4). */
export class ReplayWindow {
  private top = -1;
  private bits = 0n; // bit i: top - i was received
  constructor(private readonly size = 32) {
    if (!Number.isInteger(size) || size < 1 || size > 64) fail('invalid-argument', 'replay window of 1..64');
  }

  check(seq: number): void {
    if (seq > this.top) return;
    const off = this.top - seq;
    if (off >= this.size) fail('replay', `OSCORE: sequence number ${seq} is older than the replay window`);
    if ((this.bits >> BigInt(off)) & 1n) fail('replay', `OSCORE: sequence number ${seq} was received before`);
  }

  /** Only after the whole message was accepted. */
  commit(seq: number): void {
    this.check(seq);
    const mask = (1n << BigInt(this.size)) - 1n;
    if (seq > this.top) {
      const shift = this.top < 0 ? this.size : seq - this.top;
      this.bits = shift >= this.size ? 1n : ((this.bits << BigInt(shift)) | 1n) & mask;
      this.top = seq;
    } else {
      this.bits |= 1n << BigInt(this.top - seq);
    }
  }
}

// ------------------------------------------------------------------ option classes

const OUTER_ONLY = new Set([OPT_URI_HOST, OPT_URI_PORT, OPT_PROXY_SCHEME, OPT_HOP_LIMIT, OPT_EDHOC]);

function split(options: readonly CoapOption[], isRequest: boolean): { inner: CoapOption[]; outer: CoapOption[] } {
  const inner: CoapOption[] = [];
  const outer: CoapOption[] = [];
  for (const o of options) {
    if (o.number === OPT_OSCORE) fail('invalid-argument', 'OSCORE: the message is protected already');
    if (o.number === OPT_PROXY_URI) fail('unsupported', 'OSCORE: Proxy-Uri is not supported');
    if (OUTER_ONLY.has(o.number)) outer.push(o);
    else if (o.number === OPT_OBSERVE) {
      outer.push(o);
      inner.push(isRequest ? o : { number: OPT_OBSERVE, value: new Uint8Array(0) });
    } else inner.push(o);
  }
  return { inner, outer };
}

function plaintextOf(codeByte: number, inner: CoapOption[], payload: Uint8Array): Uint8Array {
  return concat(new Uint8Array([codeByte]), encodeOptions(inner), payload.length > 0 ? concat(new Uint8Array([0xff]), payload) : new Uint8Array(0));
}

function parsePlaintext(pt: Uint8Array, request: boolean): { code: number; options: CoapOption[]; payload: Uint8Array } {
  if (pt.length < 1) fail('malformed', 'OSCORE: empty plaintext');
  const c = pt[0] as number;
  if (request ? !isRequestCode(c) : c >> 5 < 2 || c >> 5 > 5) fail('malformed', `OSCORE: inner code 0x${c.toString(16)} is not a ${request ? 'request' : 'response'} code`);
  const { options, payload } = decodeOptions(pt, 1);
  for (const o of options)
    if (o.number === OPT_OSCORE || OUTER_ONLY.has(o.number) || o.number === OPT_PROXY_URI)
      fail('malformed', `OSCORE: option ${o.number} must not be inner`);
  return { code: c, options, payload };
}

/** What a request's response is verified against (RFC 8613 section 8.3/8.4). */
export interface OscoreRequest {
  readonly kid: Uint8Array; // the request's kid (the client's Sender ID)
  readonly piv: Uint8Array; // the request's Partial IV
  readonly observe: boolean;
  answered: boolean; // a non-notification response was accepted
  lastNotification: number; // Partial IV of the last accepted notification (-1: none)
}

export class OscoreContext {
  readonly senderId: Uint8Array;
  readonly recipientId: Uint8Array;
  readonly idContext: Uint8Array | null;
  private ssn = 0;
  private readonly window: ReplayWindow;
  private readonly sendKidContext: boolean;

  private constructor(
    p: OscoreParams,
    private readonly sender: AesCcm,
    private readonly recipient: AesCcm,
    private readonly commonIv: Uint8Array,
  ) {
    this.senderId = p.senderId.slice();
    this.recipientId = p.recipientId.slice();
    this.idContext = p.idContext ? p.idContext.slice() : null;
    this.window = new ReplayWindow(p.replayWindow ?? 32);
    this.sendKidContext = p.sendKidContext ?? this.idContext !== null;
  }

  static async create(p: OscoreParams): Promise<OscoreContext> {
    const k = await deriveOscoreKeys(p);
    try {
      const s = await AesCcm.create(k.senderKey, { tagLength: TAG_LEN, nonceLength: NONCE_LEN });
      const r = await AesCcm.create(k.recipientKey, { tagLength: TAG_LEN, nonceLength: NONCE_LEN });
      return new OscoreContext(p, s, r, k.commonIv.slice());
    } finally {
      wipe(k.senderKey, k.recipientKey, k.commonIv);
    }
  }

  /** The next sequence number this context will use (for tests and persistence). */
  get senderSequenceNumber(): number {
    return this.ssn;
  }

  /** Sets the next sequence number (RFC 8613 B.1.1 restore; tests). Never goes backwards. */
  setSenderSequenceNumber(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < this.ssn || seq > MAX_SSN) fail('invalid-argument', 'OSCORE: sequence numbers never go backwards');
    this.ssn = seq;
  }

  private nextPiv(): Uint8Array {
    if (this.ssn > MAX_SSN) fail('limit', 'OSCORE: sequence numbers exhausted; establish a new context');
    return pivOf(this.ssn++);
  }

  /** Protects a CoAP request; returns the OSCORE message and what its response is checked against. */
  async protectRequest(m: CoapMessage): Promise<{ message: CoapMessage; request: OscoreRequest }> {
    if (!isRequestCode(m.code)) fail('invalid-argument', 'OSCORE: not a request');
    const { inner, outer } = split(m.options, true);
    const observe = outer.some((o) => o.number === OPT_OBSERVE);
    const piv = this.nextPiv();
    const kid = this.senderId;
    const pt = plaintextOf(m.code, inner, m.payload);
    const ct = await this.sender.encrypt(oscoreNonce(this.commonIv, kid, piv), pt, oscoreAad(kid, piv));
    wipe(pt);
    const opt: OscoreOption = { piv, kid };
    if (this.sendKidContext && this.idContext !== null) opt.kidContext = this.idContext;
    return {
      message: {
        type: m.type,
        code: observe ? FETCH : POST,
        messageId: m.messageId,
        token: m.token,
        options: [...outer, { number: OPT_OSCORE, value: encodeOscoreOption(opt) }],
        payload: ct,
      },
      request: { kid, piv, observe, answered: false, lastNotification: -1 },
    };
  }

  /** Verifies and decrypts a response to `req`; returns the inner response (outer header and class-U options kept). */
  async unprotectResponse(outer: CoapMessage, req: OscoreRequest): Promise<CoapMessage> {
    const osc = outer.options.filter((o) => o.number === OPT_OSCORE);
    if (osc.length === 0) fail('unprotected', `the response is not OSCORE-protected (code ${outer.code >> 5}.${String(outer.code & 31).padStart(2, '0')})`);
    if (osc.length > 1) fail('malformed', 'OSCORE: repeated OSCORE option');
    const o = decodeOscoreOption(osc[0]!.value);
    if (o.kidContext !== undefined) fail('unsupported', 'OSCORE: kid context in a response (B.2 re-derivation) is not supported');
    if (o.kid !== undefined && !bytesEqual(o.kid, this.recipientId)) fail('unknown-context', 'OSCORE: the response names another kid');
    const isNotification = req.observe && outer.options.some((x) => x.number === OPT_OBSERVE);
    if (req.answered && !isNotification) fail('replay', 'OSCORE: a second response to the same request');
    let nonce: Uint8Array;
    let seq = -1;
    if (o.piv !== undefined) {
      seq = seqOf(o.piv);
      if (isNotification && seq <= req.lastNotification) fail('replay', 'OSCORE: an old or repeated notification');
      nonce = oscoreNonce(this.commonIv, this.recipientId, o.piv);
    } else {
      if (isNotification) fail('malformed', 'OSCORE: a notification without Partial IV');
      nonce = oscoreNonce(this.commonIv, req.kid, req.piv);
    }
    if (outer.payload.length <= TAG_LEN) fail('malformed', 'OSCORE: no ciphertext');
    const pt = await this.recipient.decrypt(nonce, outer.payload, oscoreAad(req.kid, req.piv));
    let inner: ReturnType<typeof parsePlaintext>;
    try {
      inner = parsePlaintext(pt, false);
    } finally {
      wipe(pt);
    }
    if (isNotification) req.lastNotification = seq;
    else req.answered = true;
    return {
      type: outer.type,
      code: inner.code,
      messageId: outer.messageId,
      token: outer.token,
      options: [...outer.options.filter((x) => x.number !== OPT_OSCORE && x.number !== OPT_OBSERVE), ...inner.options],
      payload: inner.payload,
    };
  }

  /**
   * Server role (tests, and a peer implementation): verifies a request
   * addressed to this context (kid = our Recipient ID), with replay protection.
   */
  async unprotectRequest(outer: CoapMessage): Promise<{ message: CoapMessage; request: OscoreRequest }> {
    const osc = outer.options.filter((o) => o.number === OPT_OSCORE);
    if (osc.length !== 1) fail(osc.length === 0 ? 'unprotected' : 'malformed', 'OSCORE: a request needs exactly one OSCORE option');
    const o = decodeOscoreOption(osc[0]!.value);
    if (o.piv === undefined || o.kid === undefined) fail('malformed', 'OSCORE: a request needs a Partial IV and a kid');
    if (!bytesEqual(o.kid, this.recipientId)) fail('unknown-context', 'OSCORE: security context not found (kid)');
    if (o.kidContext !== undefined && (this.idContext === null || !bytesEqual(o.kidContext, this.idContext)))
      fail('unknown-context', 'OSCORE: security context not found (kid context)');
    const seq = seqOf(o.piv);
    this.window.check(seq);
    const pt = await this.recipient.decrypt(oscoreNonce(this.commonIv, o.kid, o.piv), outer.payload, oscoreAad(o.kid, o.piv));
    let inner: ReturnType<typeof parsePlaintext>;
    try {
      inner = parsePlaintext(pt, true);
    } finally {
      wipe(pt);
    }
    this.window.commit(seq);
    const observe = inner.options.some((x) => x.number === OPT_OBSERVE);
    return {
      message: {
        type: outer.type,
        code: inner.code,
        messageId: outer.messageId,
        token: outer.token,
        options: [...outer.options.filter((x) => x.number !== OPT_OSCORE && x.number !== OPT_OBSERVE), ...inner.options],
        payload: inner.payload,
      },
      request: { kid: o.kid, piv: o.piv, observe, answered: false, lastNotification: -1 },
    };
  }

  /** Server role: protects a response to `req` (withPartialIv: its own Partial IV, nonce from our Sender ID). */
  async protectResponse(m: CoapMessage, req: OscoreRequest, withPartialIv = false): Promise<CoapMessage> {
    const { inner, outer } = split(m.options, false);
    const pt = plaintextOf(m.code, inner, m.payload);
    let nonce: Uint8Array;
    const opt: OscoreOption = {};
    if (withPartialIv) {
      const piv = this.nextPiv();
      opt.piv = piv;
      nonce = oscoreNonce(this.commonIv, this.senderId, piv);
    } else {
      nonce = oscoreNonce(this.commonIv, req.kid, req.piv);
    }
    const ct = await this.sender.encrypt(nonce, pt, oscoreAad(req.kid, req.piv));
    wipe(pt);
    return {
      type: m.type,
      code: outer.some((o) => o.number === OPT_OBSERVE) ? CONTENT : CHANGED,
      messageId: m.messageId,
      token: m.token,
      options: [...outer, { number: OPT_OSCORE, value: encodeOscoreOption(opt) }],
      payload: ct,
    };
  }
}

/** The external_aad bstr as it enters the Enc_structure (exported for the vectors). */
export function oscoreExternalAad(requestKid: Uint8Array, requestPiv: Uint8Array): Uint8Array {
  return bstr(oscoreAadArray(requestKid, requestPiv));
}
