/**
 * session.ts - a client of the trusted core over HTTP, as the browser (and
 * the Node interop test) uses it:
 *
 *   enroll(token, name)  a fresh P-256 key (WebCrypto, non-extractable);
 *                        EDHOC (suite 2, method 0) with a kccs credential;
 *                        POST /pki/enroll; the certificate is checked
 *                        (issued by the core CA to our key) and stored
 *   signIn()             EDHOC with our certificate (ID_CRED_I = x5chain);
 *                        the OSCORE context of RFC 9528 Appendix A.1
 *   request(...)         one OSCORE-protected request over HTTP (RFC 8613
 *                        section 11) with fetch(); inner Block1 for large
 *                        bodies, inner Block2 for large answers; CBOR
 *                        (Content-Format 60) or JSON (50)
 *
 * The core is trusted only through its certificate chain: its identity and
 * CA certificates must both be issued by the owner root the caller pins
 * (x509.ts verifyCoreCredential, as cli/session.c). The host that relays
 * the HTTP requests sees EDHOC messages and OSCORE ciphertext only; an
 * answer that comes back without OSCORE is reported, never trusted.
 *
 * The session keeps its OSCORE context in memory only. Where the identity
 * (key handle, certificate, the core's certificates) is kept is the
 * caller's choice (IdentityStore: IndexedDB in the browser; a CryptoKey
 * stored there stays non-extractable).
 */
import { bytesEqual, concat, fromHex, fromUtf8, toHex, utf8, wipe } from './bytes.js';
import { type CborInput, type PlainValue, MAJOR_MAP, asBytes, asMap, bstr, decode, encode, head, toPlain } from './cbor.js';
import {
  type Block,
  type CoapMessage,
  type CoapOption,
  CF_CBOR,
  CF_JSON,
  CHANGED,
  CONTINUE,
  DELETE,
  FETCH,
  GET,
  OPT_ACCEPT,
  OPT_BLOCK1,
  OPT_BLOCK2,
  OPT_CONTENT_FORMAT,
  OPT_OSCORE,
  POST,
  PUT,
  TYPE_ACK,
  TYPE_CON,
  blockSize,
  codeString,
  decodeBlock,
  encodeBlock,
  getOption,
  optionUint,
  pathOptions,
  uintOption,
} from './coap.js';
import { ALG_SHA256_64, HDR_KCCS, HDR_X5CHAIN, HDR_X5T, headerGet } from './cose.js';
import { SUITE_2, exportP256Public, generateP256SigningKey } from './ec.js';
import { EdhocInitiator, type EdhocCredential, type PeerCredential, encodeConnectionId, errorMessage, isErrorMessage, parseErrorMessage } from './edhoc.js';
import { ProtocolError, fail } from './errors.js';
import { OscoreContext, oscoreHeaderDecode, oscoreHeaderEncode } from './oscore.js';
import { randomBytes } from './webcrypto.js';
import { type Certificate, parseCertificate, thumbprint, verifyCoreCredential, verifyIssued } from './x509.js';

export const EDHOC_PATH = '/.well-known/edhoc';
export const EDHOC_CID_MEDIA_TYPE = 'application/cid-edhoc+cbor-seq';
const BLOCK1_THRESHOLD = 1536; // as the CLI: one core message is at most 2048 bytes with headers
const BLOCK_SZX = 6; // 1024-byte blocks
const MAX_ANSWER = 1 << 20;
const MAX_BLOCKS = 1024;

/** Who we are: the key handle, and once enrolled our certificate and the core's. */
export interface StoredIdentity {
  keyPair: CryptoKeyPair; // the private key non-extractable
  publicKey: Uint8Array; // 65-byte uncompressed point
  name: string;
  certificate?: Uint8Array;
  clientId?: number;
  role?: string;
  coreCa?: Uint8Array; // pinned after enrollment
  coreIdentity?: Uint8Array;
}

export interface IdentityStore {
  load(): Promise<StoredIdentity | null>;
  save(identity: StoredIdentity): Promise<void>;
}

export class MemoryIdentityStore implements IdentityStore {
  private id: StoredIdentity | null = null;
  async load(): Promise<StoredIdentity | null> {
    return this.id;
  }
  async save(identity: StoredIdentity): Promise<void> {
    this.id = identity;
  }
}

export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

export interface SessionOptions {
  /** http://host:port of cloisterd's HTTP endpoint ('' = the page's own origin). */
  server: string;
  /** The owner's root certificate (DER), pinned: the core must chain to it. */
  ownerRoot: Uint8Array;
  store?: IdentityStore;
  fetch?: FetchFn;
  /** Unix time in ms (certificate validity); default Date.now. */
  now?: () => number;
  /** Per HTTP exchange, default 30 s. */
  timeoutMs?: number;
  /** Progress lines for a UI (never contain secrets). */
  onStep?: (line: string) => void;
}

export interface Attestation {
  version: number;
  backend: string;
  state: string;
  quote: Uint8Array;
  identityPub: Uint8Array;
  caPub: Uint8Array;
  owner: Uint8Array;
  nonce: Uint8Array;
  caCert?: Uint8Array;
  identityCert?: Uint8Array;
}

export interface Enrollment {
  clientId: number;
  role: string;
  certificate: Uint8Array;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'FETCH';

export interface RequestOptions {
  body?: CborInput;
  /** "k=v&k2=v2" or a record (values are not percent-encoded: CoAP carries them raw). */
  query?: string | Record<string, string | number>;
  /** cbor (default) or json: the request body's and the answer's format. */
  format?: 'cbor' | 'json';
  timeoutMs?: number;
}

export interface CoreResponse {
  code: number; // CoAP response code of the inner (verified) response
  codeText: string; // "2.05"
  ok: boolean; // class 2
  contentFormat: number | null;
  payload: Uint8Array;
  /** The payload decoded (CBOR -> plain values, JSON parsed); null when empty. */
  value: unknown;
}

/** The core refused a request (4.xx / 5.xx); errorCode is its stable code ("forbidden", ...). */
export class CoreError extends ProtocolError {
  constructor(
    readonly coapCode: string,
    readonly errorCode: string | null,
    readonly detail: string | null,
    readonly value: unknown,
  ) {
    super('core', `the core refused the request: ${coapCode}${errorCode !== null ? ` ${errorCode}` : ''}${detail !== null ? `: ${detail}` : ''}`);
    this.name = 'CoreError';
  }
}

/** An answer that came back without OSCORE (never trusted: the host or a lost session). */
export class UnprotectedAnswer extends ProtocolError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super('unprotected', message);
    this.name = 'UnprotectedAnswer';
  }
}

const METHODS: Record<Method, number> = { GET, POST, PUT, DELETE, FETCH };

interface HttpAnswer {
  status: number;
  contentType: string;
  oscore: string | null;
  body: Uint8Array;
}

/** kccs: the CCS {2: sub, 8: {1: COSE_Key {1: 2, -1: 1, -2: x, -3: y}}} (as cli_ccs_encode). */
export function encodeKccs(publicKey: Uint8Array, name: string): Uint8Array {
  if (publicKey.length !== 65 || publicKey[0] !== 4) fail('invalid-argument', 'an uncompressed P-256 public key is expected');
  const key = new Map<CborInput, CborInput>([
    [1, 2],
    [-1, 1],
    [-2, publicKey.slice(1, 33)],
    [-3, publicKey.slice(33)],
  ]);
  return encode(
    new Map<CborInput, CborInput>([
      [2, name],
      [8, new Map<CborInput, CborInput>([[1, key]])],
    ]),
  );
}

function mapWith(label: number, encodedValue: Uint8Array): Uint8Array {
  return concat(head(MAJOR_MAP, 1), encode(label), encodedValue);
}

/** An EDHOC message or error (by its media type; a plain-text refusal of the host or core is not one). */
function isEdhocBody(a: HttpAnswer): boolean {
  return /^application\/(cid-)?edhoc\+cbor-seq\s*(;|$)/i.test(a.contentType);
}

function shortText(b: Uint8Array): string {
  try {
    return fromUtf8(b.subarray(0, 200)).replace(/[^\x20-\x7e]/g, ' ').trim();
  } catch {
    return `${b.length} bytes`;
  }
}

export class Session {
  private readonly opts: SessionOptions;
  private readonly store: IdentityStore;
  private readonly fetchFn: FetchFn;
  private oscore: OscoreContext | null = null;
  private role: 'enrollee' | 'client' | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private root: Certificate;

  constructor(opts: SessionOptions) {
    this.opts = opts;
    this.store = opts.store ?? new MemoryIdentityStore();
    const f = opts.fetch ?? (globalThis as { fetch?: FetchFn }).fetch;
    if (f === undefined) fail('invalid-argument', 'no fetch() available');
    this.fetchFn = f;
    this.root = parseCertificate(opts.ownerRoot);
  }

  get signedIn(): boolean {
    return this.oscore !== null && this.role === 'client';
  }

  private now(): number {
    return Math.floor((this.opts.now ?? Date.now)() / 1000);
  }

  private step(line: string): void {
    this.opts.onStep?.(line);
  }

  // ---------------------------------------------------------------- HTTP

  private async http(method: string, path: string, headers: Record<string, string>, body: Uint8Array | null, timeoutMs?: number): Promise<HttpAnswer> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs ?? this.opts.timeoutMs ?? 30000);
    let r: Response;
    try {
      // no redirects: an OSCORE message is bound to its endpoint (RFC 8613 section 11.1)
      const init: RequestInit = { method, headers, signal: ctl.signal, redirect: 'error' };
      if (body !== null) init.body = body as Uint8Array<ArrayBuffer>;
      r = await this.fetchFn(`${this.opts.server}${path}`, init);
    } catch (e: unknown) {
      clearTimeout(timer);
      const why = e instanceof Error ? (e.name === 'AbortError' ? 'timed out' : e.message) : 'failed';
      return fail('transport', `HTTP ${method} ${path.split('?')[0]} to ${this.opts.server || 'the server'}: ${why}`);
    }
    try {
      const buf = new Uint8Array(await r.arrayBuffer());
      if (buf.length > MAX_ANSWER + 4096) fail('limit', 'HTTP answer too large');
      return { status: r.status, contentType: r.headers.get('content-type') ?? '', oscore: r.headers.get('oscore'), body: buf };
    } catch (e: unknown) {
      if (e instanceof ProtocolError) throw e;
      return fail('transport', `HTTP ${method} ${path.split('?')[0]}: the answer was cut short`);
    } finally {
      clearTimeout(timer);
    }
  }

  // ---------------------------------------------------------------- bootstrap

  /** GET /attestation?nonce=... (public data; the quote is verified elsewhere). */
  async attestation(nonce: Uint8Array = randomBytes(16)): Promise<Attestation> {
    if (nonce.length < 16 || nonce.length > 64) fail('invalid-argument', 'a nonce of 16..64 bytes');
    const a = await this.http('GET', `/attestation?nonce=${toHex(nonce)}`, {}, null);
    if (a.status !== 200) fail('transport', `GET /attestation answered HTTP ${a.status}: ${shortText(a.body)}`);
    const m = asMap(decode(a.body), 'attestation');
    const get = (k: string): Uint8Array => asBytes(m.get(k) ?? null, `attestation "${k}"`);
    const text = (k: string): string => {
      const v = m.get(k);
      return typeof v === 'string' ? v : fail('malformed', `attestation "${k}": text expected`);
    };
    const v = m.get('v');
    const out: Attestation = {
      version: typeof v === 'number' ? v : fail('malformed', 'attestation "v"'),
      backend: text('backend'),
      state: text('state'),
      quote: get('quote'),
      identityPub: get('identity_pub'),
      caPub: get('ca_pub'),
      owner: get('owner'),
      nonce: get('nonce'),
    };
    if (!bytesEqual(out.nonce, nonce)) fail('auth', 'the attestation answer echoes another nonce');
    if (m.has('ca_cert')) out.caCert = get('ca_cert');
    if (m.has('identity_cert')) out.identityCert = get('identity_cert');
    return out;
  }

  /** The core's identity and CA certificates from its evidence, checked against the owner root. */
  async coreCertificates(): Promise<{ identity: Uint8Array; ca: Uint8Array }> {
    const a = await this.attestation();
    if (a.identityCert === undefined || a.caCert === undefined) fail('state', `the core is not provisioned yet (state ${a.state})`);
    await verifyCoreCredential(a.identityCert, a.caCert, this.opts.ownerRoot, this.now());
    return { identity: a.identityCert, ca: a.caCert };
  }

  // ---------------------------------------------------------------- EDHOC

  private async postEdhoc(body: Uint8Array): Promise<HttpAnswer> {
    return this.http('POST', EDHOC_PATH, { 'Content-Type': EDHOC_CID_MEDIA_TYPE }, body);
  }

  /**
   * The responder's ID_CRED_R -> CRED_R and key, as cli/session.c peer_cred:
   * x5chain by value, or x5t of the identity we know (or learn from the
   * evidence), then the chain to the owner root and the pins.
   */
  private peerLookup(known: { identity?: Uint8Array | undefined; ca?: Uint8Array | undefined }, pinCa: Uint8Array | undefined) {
    return async (idCredR: Uint8Array): Promise<PeerCredential> => {
      let identity: Uint8Array | undefined;
      let ca: Uint8Array | undefined = known.ca;
      const chain = headerGet(idCredR, HDR_X5CHAIN);
      const x5t = headerGet(idCredR, HDR_X5T);
      if (chain !== undefined) {
        const items = Array.isArray(chain) ? chain : [chain];
        if (items.length < 1 || items.length > 2) fail('certificate', 'x5chain must be [identity certificate, core CA]');
        identity = asBytes(items[0] ?? null, 'x5chain');
        if (items.length === 2) ca = asBytes(items[1] ?? null, 'x5chain');
      } else if (x5t !== undefined) {
        if (!Array.isArray(x5t) || x5t.length !== 2 || x5t[0] !== ALG_SHA256_64 || !(x5t[1] instanceof Uint8Array) || x5t[1].length !== 8)
          fail('certificate', 'malformed or unsupported x5t (SHA-256/64 expected)');
        const want = x5t[1];
        if (known.identity !== undefined && bytesEqual(await thumbprint(known.identity), want)) identity = known.identity;
        else {
          const learned = await this.coreCertificates();
          if (!bytesEqual(await thumbprint(learned.identity), want)) fail('certificate', "the core's x5t matches no certificate it publishes");
          identity = learned.identity;
          ca ??= learned.ca;
        }
      } else fail('certificate', 'the core did not send an X.509 credential');
      if (ca === undefined) fail('certificate', 'the core CA certificate is unknown');
      const { identity: id } = await verifyCoreCredential(identity, ca, this.opts.ownerRoot, this.now(), { ca: pinCa });
      this.step(`core '${id.cn}' verified (issued by the owner root '${this.root.cn}')`);
      return { cred: bstr(identity), publicKey: id.publicKey };
    };
  }

  private async handshake(credential: EdhocCredential, known: { identity?: Uint8Array | undefined; ca?: Uint8Array | undefined }, pinCa: Uint8Array | undefined): Promise<OscoreContext> {
    const cI = new Uint8Array([(randomBytes(1)[0] as number) % 24]); // one byte: a CBOR int 0..23 on the wire
    const e = new EdhocInitiator({ method: 0, suites: [SUITE_2.id], connectionId: cI, credential, lookupPeer: this.peerLookup(known, pinCa) });
    try {
      const m1 = await e.message1();
      const a2 = await this.postEdhoc(concat(new Uint8Array([0xf5]), m1)); // true: message_1 (RFC 9528 A.2)
      if (a2.status !== 200 || a2.body.length === 0 || !isEdhocBody(a2)) {
        if (isEdhocBody(a2) && isErrorMessage(a2.body)) throw parseErrorMessage(a2.body);
        fail('transport', `the host answered HTTP ${a2.status} to EDHOC message_1: ${shortText(a2.body)}`);
      }
      try {
        await e.processMessage2(a2.body);
      } catch (err: unknown) {
        if (err instanceof ProtocolError && (err.code === 'certificate' || err.code === 'auth')) {
          let cR: Uint8Array | null = null;
          try {
            cR = e.connectionIdR;
          } catch {
            /* not parsed that far */
          }
          if (cR !== null) await this.postEdhoc(concat(encodeConnectionId(cR), errorMessage('credential refused'))).catch(() => undefined);
        }
        throw err;
      }
      const m3 = await e.message3();
      const a4 = await this.postEdhoc(concat(encodeConnectionId(e.connectionIdR), m3));
      if ((a4.status !== 200 && a4.status !== 204) || (a4.body.length > 0 && !isEdhocBody(a4))) {
        if (a4.body.length > 0 && isEdhocBody(a4) && isErrorMessage(a4.body)) throw parseErrorMessage(a4.body);
        fail('transport', `the host answered HTTP ${a4.status} to EDHOC message_3: ${shortText(a4.body)}`);
      }
      if (a4.body.length > 0) await e.processMessage4(a4.body);
      e.complete();
      const p = await e.oscoreParams();
      try {
        return await OscoreContext.create(p);
      } finally {
        wipe(p.masterSecret, p.masterSalt);
      }
    } finally {
      e.destroy();
    }
  }

  /**
   * Enrolls with a one-time token: a new key, EDHOC with a kccs, POST
   * /pki/enroll. The identity (key handle, certificate, the core's
   * certificates) is saved in the store. Afterwards: signIn().
   */
  async enroll(token: Uint8Array | string, name: string): Promise<Enrollment> {
    const tok = typeof token === 'string' ? fromHex(token.trim()) : token;
    if (tok.length !== 16) fail('invalid-argument', 'an enrollment token is 16 bytes (32 hex digits)');
    if (name.length === 0 || utf8(name).length > 64) fail('invalid-argument', 'a name of 1..64 bytes');
    this.close();
    const core = await this.coreCertificates();
    this.step('the core is provisioned by this owner; generating a key (non-extractable)');
    const keyPair = await generateP256SigningKey();
    const publicKey = await exportP256Public(keyPair.publicKey);
    const ccs = encodeKccs(publicKey, name);
    this.oscore = await this.handshake({ idCred: mapWith(HDR_KCCS, ccs), cred: ccs, privateKey: keyPair.privateKey }, core, core.ca);
    this.role = 'enrollee';
    this.step('EDHOC done with a raw key; asking for a certificate');
    let r: CoreResponse;
    try {
      r = await this.request('POST', '/pki/enroll', { body: { token: tok, name } });
    } finally {
      this.close(); // the core ends an enrollee session after enrollment
    }
    if (!r.ok) throw coreError(r);
    const m = r.value;
    if (m === null || typeof m !== 'object' || m instanceof Uint8Array || Array.isArray(m)) fail('malformed', 'POST /pki/enroll: a map is expected');
    const rec = m as { [k: string]: PlainValue };
    const id = rec['id'];
    const role = rec['role'];
    const certificate = rec['cert'];
    if (typeof id !== 'number' || typeof role !== 'string' || !(certificate instanceof Uint8Array)) fail('malformed', 'POST /pki/enroll: {id, role, cert} expected');
    const cert = parseCertificate(certificate);
    await verifyIssued(cert, parseCertificate(core.ca), this.now());
    if (!bytesEqual(cert.publicKey, publicKey)) fail('certificate', 'the core certified another key than ours');
    await this.store.save({ keyPair, publicKey, name, certificate, clientId: id, role, coreCa: core.ca, coreIdentity: core.identity });
    this.step(`enrolled as client ${id} (${role})`);
    return { clientId: id, role, certificate };
  }

  /** EDHOC with our certificate (ID_CRED_I = x5chain); the OSCORE session for request(). */
  async signIn(): Promise<void> {
    const me = await this.store.load();
    if (me === null || me.certificate === undefined) fail('state', 'not enrolled: enroll with a token first');
    this.close();
    this.oscore = await this.handshake(
      { idCred: mapWith(HDR_X5CHAIN, bstr(me.certificate)), cred: bstr(me.certificate), privateKey: me.keyPair.privateKey },
      { identity: me.coreIdentity, ca: me.coreCa },
      me.coreCa,
    );
    this.role = 'client';
    this.step('signed in: EDHOC done (suite 2, method 0); OSCORE session ready');
  }

  /** Forgets the OSCORE session (the identity stays in the store). */
  close(): void {
    this.oscore = null;
    this.role = null;
  }

  // ---------------------------------------------------------------- OSCORE requests

  private async exchange(inner: CoapMessage, timeoutMs?: number): Promise<CoapMessage> {
    const ctx = this.oscore;
    if (ctx === null) fail('state', 'no session: sign in first');
    const { message, request } = await ctx.protectRequest(inner);
    const opt = getOption(message, OPT_OSCORE);
    if (opt === undefined) fail('crypto', 'OSCORE: no option after protection');
    const a = await this.http(
      message.code === FETCH ? 'FETCH' : 'POST',
      '/',
      { 'Content-Type': 'application/oscore', OSCORE: oscoreHeaderEncode(opt.value) },
      message.payload,
      timeoutMs,
    );
    if (a.oscore === null) {
      throw new UnprotectedAnswer(
        a.status,
        a.status === 504
          ? 'no answer yet (HTTP 504): poll again'
          : `the request was answered without OSCORE (HTTP ${a.status}: ${shortText(a.body)}); not trusted: the session may have ended (core restart, revocation, idle timeout)`,
      );
    }
    if (a.status !== 200 || !/^application\/oscore\s*(;|$)/i.test(a.contentType)) fail('malformed', `an OSCORE answer with HTTP ${a.status} and ${a.contentType || 'no Content-Type'}`);
    const outer: CoapMessage = {
      type: TYPE_ACK,
      code: CHANGED,
      messageId: inner.messageId,
      token: inner.token,
      options: [{ number: OPT_OSCORE, value: oscoreHeaderDecode(a.oscore) }],
      payload: a.body,
    };
    return ctx.unprotectResponse(outer, request);
  }

  private build(method: Method, path: string, opts: RequestOptions, extra: CoapOption[], payload: Uint8Array): CoapMessage {
    const code = METHODS[method];
    if (code === undefined) fail('invalid-argument', `unknown method ${String(method)}`);
    if (!path.startsWith('/')) fail('invalid-argument', 'a path starts with /');
    let query: string | undefined;
    if (typeof opts.query === 'string') query = opts.query;
    else if (opts.query !== undefined)
      query = Object.entries(opts.query)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join('&');
    const options = pathOptions(path, query);
    const json = opts.format === 'json';
    if (payload.length > 0 || opts.body !== undefined) options.push({ number: OPT_CONTENT_FORMAT, value: uintOption(json ? CF_JSON : CF_CBOR) });
    if (json) options.push({ number: OPT_ACCEPT, value: uintOption(CF_JSON) });
    return { type: TYPE_CON, code, messageId: 0, token: new Uint8Array(0), options: [...options, ...extra], payload };
  }

  private decodeValue(cf: number | null, payload: Uint8Array): unknown {
    if (payload.length === 0) return null;
    if (cf === CF_JSON) {
      try {
        return JSON.parse(fromUtf8(payload)) as unknown;
      } catch {
        return fail('malformed', 'the answer is not valid JSON');
      }
    }
    if (cf === CF_CBOR) return toPlain(decode(payload));
    return null;
  }

  private async requestNow(method: Method, path: string, opts: RequestOptions): Promise<CoreResponse> {
    const json = opts.format === 'json';
    const body = opts.body === undefined ? new Uint8Array(0) : json ? utf8(JSON.stringify(opts.body, jsonBytes)) : encode(opts.body);
    let resp: CoapMessage;
    if (body.length > BLOCK1_THRESHOLD) resp = await this.sendBlock1(method, path, opts, body);
    else resp = await this.exchange(this.build(method, path, opts, [], body), opts.timeoutMs);

    // inner Block2: the rest of a large answer (RFC 7959 inside OSCORE), block by block
    const chunks: Uint8Array[] = [resp.payload];
    let total = resp.payload.length;
    const b2 = getOption(resp, OPT_BLOCK2);
    let cur: Block | null = b2 !== undefined && resp.code >> 5 === 2 ? decodeBlock(b2) : null;
    if (cur !== null && cur.num !== 0) fail('malformed', 'a block-wise answer that does not start at block 0');
    while (cur !== null && cur.more) {
      if (chunks.length >= MAX_BLOCKS || total > MAX_ANSWER) fail('limit', 'the answer is too large');
      const next: Block = { num: cur.num + 1, more: false, szx: cur.szx };
      if (next.num * blockSize(cur.szx) !== total) fail('malformed', 'a block of the wrong size in a block-wise answer');
      resp = await this.exchange(this.build(method, path, opts, [{ number: OPT_BLOCK2, value: encodeBlock(next) }], new Uint8Array(0)), opts.timeoutMs);
      if (resp.code >> 5 !== 2) return this.answer(resp, resp.payload); // refused mid-way: that answer is the response
      const got = getOption(resp, OPT_BLOCK2);
      if (got === undefined) fail('malformed', 'a block of a block-wise answer without Block2');
      cur = decodeBlock(got);
      if (cur.num !== next.num) fail('malformed', 'the core answered another block than asked for');
      chunks.push(resp.payload);
      total += resp.payload.length;
    }
    return this.answer(resp, chunks.length === 1 ? chunks[0]! : concat(...chunks));
  }

  private answer(resp: CoapMessage, payload: Uint8Array): CoreResponse {
    const cfo = getOption(resp, OPT_CONTENT_FORMAT);
    const cf = cfo === undefined ? null : optionUint(cfo);
    return { code: resp.code, codeText: codeString(resp.code), ok: resp.code >> 5 === 2, contentFormat: cf, payload, value: this.decodeValue(cf, payload) };
  }

  /** A body larger than one core message: inner Block1, 2.31 Continue between blocks (as cli/session.c). */
  private async sendBlock1(method: Method, path: string, opts: RequestOptions, body: Uint8Array): Promise<CoapMessage> {
    let off = 0;
    let szx = BLOCK_SZX;
    for (let i = 0; i < 4096; i++) {
      const bs = blockSize(szx);
      const n = Math.min(bs, body.length - off);
      const blk: Block = { num: off / bs, more: off + n < body.length, szx };
      if (!Number.isInteger(blk.num)) fail('state', 'Block1: misaligned block');
      const resp = await this.exchange(this.build(method, path, opts, [{ number: OPT_BLOCK1, value: encodeBlock(blk) }], body.subarray(off, off + n)), opts.timeoutMs);
      if (!blk.more) return resp;
      if (resp.code !== CONTINUE) {
        if (resp.code >> 5 === 2) fail('malformed', `the core answered block ${blk.num} with ${codeString(resp.code)} instead of 2.31 Continue`);
        return resp; // refused: that answer is the response
      }
      const b1 = getOption(resp, OPT_BLOCK1);
      const want = b1 !== undefined ? decodeBlock(b1) : null;
      if (want !== null && want.num === blk.num && want.szx < szx) {
        off += blockSize(want.szx); // it kept the first bytes of this block
        szx = want.szx;
      } else off += n;
    }
    return fail('limit', 'too many blocks');
  }

  /** One protected request; the verified answer (4.xx/5.xx are answers too: see `call`). */
  request(method: Method, path: string, opts: RequestOptions = {}): Promise<CoreResponse> {
    // one exchange at a time: Block2 answers come from a per-session cache in the core
    const run = this.queue.then(
      () => this.requestNow(method, path, opts),
      () => this.requestNow(method, path, opts),
    );
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** request() that returns the decoded answer and throws CoreError for a refusal. */
  async call(method: Method, path: string, body?: CborInput, query?: RequestOptions['query']): Promise<unknown> {
    const o: RequestOptions = {};
    if (body !== undefined) o.body = body;
    if (query !== undefined) o.query = query;
    const r = await this.request(method, path, o);
    if (!r.ok) throw coreError(r);
    return r.value;
  }
}

/** The core's error map {"error", "message"} of a refused request, as a CoreError. */
export function coreError(r: CoreResponse): CoreError {
  const v = r.value;
  let code: string | null = null;
  let msg: string | null = null;
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Map)) {
    const e = (v as { [k: string]: unknown })['error'];
    const m = (v as { [k: string]: unknown })['message'];
    if (typeof e === 'string') code = e;
    if (typeof m === 'string') msg = m;
  }
  return new CoreError(r.codeText, code, msg, v);
}

/** JSON.stringify replacer: JSON has no byte strings (send those as CBOR). */
function jsonBytes(_k: string, v: unknown): unknown {
  if (v instanceof Uint8Array || v instanceof Map) fail('invalid-argument', 'byte strings and non-text map keys cannot be sent as JSON: use CBOR');
  if (typeof v === 'bigint') fail('invalid-argument', 'a bigint cannot be sent as JSON: use CBOR');
  return v;
}

/** Is this (decoded) CBOR an enrollee/whoami-like map? Small helper for callers. */
export function isRecord(v: unknown): v is { [k: string]: PlainValue } {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Map);
}

