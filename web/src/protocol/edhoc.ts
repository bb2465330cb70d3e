/**
 * edhoc.ts - the EDHOC initiator (RFC 9528): message_1, message_2,
 * message_3, optional message_4, error messages, the exporter, the key
 * update and the OSCORE parameters of Appendix A.1.
 *
 * Methods 0-3 (signature or static DH for each side), cipher suites 2
 * (P-256/ES256, what the core speaks) and 0 (X25519/EdDSA, where WebCrypto
 * has them). Connection identifiers in the representation of section 3.3.2
 * and compact ID_CRED (section 3.5.3.2) both ways; surplus encodings in the
 * responder's messages are refused (RFC 9529 section 4).
 *
 * Credentials are the application's decision: our own is an EdhocCredential
 * (ID_CRED, CRED, private key handle); the responder's ID_CRED_R (map form)
 * is handed to a lookup that returns CRED_R and its public key after its
 * own validation (for the core: the certificate chain to the owner root,
 * x509.ts). Any failure aborts the session.
 *
 * The ephemeral private key is a non-extractable CryptoKey generated per
 * session and dropped after message_2. `recordTrace` keeps intermediate
 * values (secrets included) for the RFC 9529 tests; never set it otherwise.
 */
import { bytesEqual, concat, ctEqual, wipe, xor } from './bytes.js';
import { AesCcm } from './ccm.js';
import { CborDecoder, MAJOR_BSTR, MAJOR_MAP, MAJOR_NINT, MAJOR_UINT, bstr, decode, encode, encodeSequence } from './cbor.js';
import { encStructure, sigStructure } from './cose.js';
import { type EdhocSuite, type EphemeralKey, suiteById } from './ec.js';
import { ProtocolError, fail } from './errors.js';
import { hkdfExpand, hkdfExtract } from './hkdf.js';
import { sha256 } from './webcrypto.js';

export type EdhocMethod = 0 | 1 | 2 | 3;

export const ERR_UNSPECIFIED = 1;
export const ERR_WRONG_SUITE = 2;
export const ERR_UNKNOWN_CRED = 3;

/** Our credential. */
export interface EdhocCredential {
  /** ID_CRED_I as an encoded CBOR map: {33: cert}, {34: [-15, x5t]}, {14: ccs}, {4: kid} ... */
  idCred: Uint8Array;
  /** CRED_I exactly as it enters context_3 and TH_4 (bstr of the DER for X.509, the CCS map for kccs). */
  cred: Uint8Array;
  /** Signature key (the initiator signs: methods 0, 1) or static ECDH key (methods 2, 3). */
  privateKey: CryptoKey;
}

/** The responder's credential, as the lookup validated it. */
export interface PeerCredential {
  cred: Uint8Array;
  /** Signature public key (P-256 point / Ed25519 key) or static DH public key (x-only or point). */
  publicKey: Uint8Array;
}

export interface EadItem {
  label: number;
  value?: Uint8Array;
}

export interface InitiatorConfig {
  method: EdhocMethod;
  /** SUITES_I in preference order; the last one is the selected suite. */
  suites: readonly number[];
  /** C_I: 0..7 bytes. */
  connectionId: Uint8Array;
  credential: EdhocCredential;
  /** ID_CRED_R (encoded map; a compact kid expanded to {4: kid}) -> CRED_R and key; throw to refuse. */
  lookupPeer: (idCredR: Uint8Array) => Promise<PeerCredential>;
  ead1?: readonly EadItem[];
  ead3?: readonly EadItem[];
  /** Tests only: a fixed ephemeral key. */
  ephemeral?: EphemeralKey;
  /** Tests only: keep intermediate values (secrets included) in `trace`. */
  recordTrace?: boolean;
}

/** An EDHOC error message from the responder. */
export class EdhocPeerError extends ProtocolError {
  constructor(
    readonly errCode: number,
    readonly diagnostic: string | null,
    readonly suitesR: readonly number[] | null,
    message: string,
  ) {
    super('peer-error', message);
    this.name = 'EdhocPeerError';
  }
}

// ------------------------------------------------------------------ encodings

function isOneByteInt(b: number): boolean {
  return b <= 0x17 || (b >= 0x20 && b <= 0x37);
}

/** A connection identifier on the wire (section 3.3.2): one-byte ints as ints, else bstr. */
export function encodeConnectionId(id: Uint8Array): Uint8Array {
  if (id.length === 1 && isOneByteInt(id[0] as number)) return id.slice();
  return bstr(id);
}

function readConnectionId(d: CborDecoder, what: string): { id: Uint8Array; raw: Uint8Array } {
  const m = d.peekMajor();
  if (m === MAJOR_UINT || m === MAJOR_NINT) {
    const raw = d.raw();
    if (raw.length !== 1) fail('malformed', `EDHOC: ${what} is an integer outside -24..23`);
    return { id: raw.slice(), raw };
  }
  if (m !== MAJOR_BSTR) fail('malformed', `EDHOC: ${what} must be an integer or a byte string`);
  const id = d.bytes(what);
  if (id.length === 1 && isOneByteInt(id[0] as number)) fail('malformed', `EDHOC: surplus bstr encoding of ${what}`);
  if (id.length > 7) fail('limit', `EDHOC: ${what} longer than 7 bytes (it becomes an OSCORE ID)`);
  return { id, raw: bstr(id) }; // the decoder is strict: this is the exact encoding read
}

/** ID_CRED as sent in PLAINTEXT_2/3 (section 3.5.3.2): a lone kid compact, else the map. */
export function compactIdCred(idCredMap: Uint8Array): Uint8Array {
  const m = decode(idCredMap);
  if (!(m instanceof Map)) fail('invalid-argument', 'ID_CRED must be a map');
  if (m.size === 1 && m.has(4)) {
    const kid = m.get(4);
    if (!(kid instanceof Uint8Array)) fail('invalid-argument', 'kid must be a byte string');
    return encodeConnectionId(kid);
  }
  return idCredMap;
}

/** Reads ID_CRED_R from PLAINTEXT_2; returns the map form (compact kid expanded). */
function readIdCred(d: CborDecoder): Uint8Array {
  const m = d.peekMajor();
  if (m === MAJOR_UINT || m === MAJOR_NINT) {
    const raw = d.raw();
    if (raw.length !== 1) fail('malformed', 'EDHOC: compact ID_CRED_R is an integer outside -24..23');
    return encode(new Map([[4, raw.slice()]]));
  }
  if (m === MAJOR_BSTR) {
    const kid = d.bytes('ID_CRED_R');
    if (kid.length === 1 && isOneByteInt(kid[0] as number)) fail('malformed', 'EDHOC: surplus bstr encoding of ID_CRED_R');
    return encode(new Map([[4, kid]]));
  }
  if (m !== MAJOR_MAP) fail('malformed', 'EDHOC: ID_CRED_R must be a map, a byte string or an integer');
  const { value, raw } = d.itemRaw();
  const map = value as Map<unknown, unknown>;
  if (map.size === 1 && map.has(4)) fail('malformed', 'EDHOC: surplus map encoding of ID_CRED_R (a lone kid must be compact)');
  return raw.slice();
}

function readEad(d: CborDecoder): EadItem[] {
  const items: EadItem[] = [];
  while (!d.atEnd()) {
    const label = d.int('EAD label');
    const item: EadItem = { label };
    if (!d.atEnd() && d.peekMajor() === MAJOR_BSTR) item.value = d.bytes('EAD value');
    if (label < 0) fail('unsupported', `EDHOC: unknown critical EAD item ${-label}`);
    items.push(item);
  }
  return items;
}

function encodeEad(items: readonly EadItem[] | undefined): Uint8Array {
  if (items === undefined) return new Uint8Array(0);
  return concat(...items.map((i) => (i.value !== undefined ? encodeSequence([i.label, i.value]) : encode(i.label))));
}

/** (ERR_CODE, ERR_INFO) for code 1 (a text). */
export function errorMessage(diagnostic: string): Uint8Array {
  return encodeSequence([ERR_UNSPECIFIED, diagnostic]);
}

/** Is this message an EDHOC error (it starts with an integer)? */
export function isErrorMessage(msg: Uint8Array): boolean {
  return msg.length > 0 && (msg[0] as number) >> 5 <= 1;
}

export function parseErrorMessage(msg: Uint8Array): EdhocPeerError {
  const d = new CborDecoder(msg);
  const code = d.int('ERR_CODE');
  let diag: string | null = null;
  let suites: number[] | null = null;
  let text: string;
  if (code === ERR_UNSPECIFIED) {
    diag = d.text('ERR_INFO');
    const clean = diag.replace(/[^\x20-\x7e]/g, '?').slice(0, 128);
    text = `EDHOC error 1 ("${clean}")`;
  } else if (code === ERR_WRONG_SUITE) {
    const v = d.item();
    suites = typeof v === 'number' ? [v] : Array.isArray(v) ? v.map((x) => (typeof x === 'number' ? x : fail('malformed', 'EDHOC: bad SUITES_R'))) : fail('malformed', 'EDHOC: bad SUITES_R');
    text = `EDHOC error 2 (wrong selected cipher suite; the responder supports ${suites.join(', ')})`;
  } else if (code === ERR_UNKNOWN_CRED) {
    if (d.item() !== true) fail('malformed', 'EDHOC: error 3 must carry true');
    text = 'EDHOC error 3 (unknown credential referenced)';
  } else {
    if (!d.atEnd()) d.item();
    text = `EDHOC error ${code}`;
  }
  if (!d.atEnd()) fail('malformed', 'EDHOC: trailing bytes in an error message');
  return new EdhocPeerError(code, diag, suites, text);
}

/** PLAINTEXT_2 = (C_R, ID_CRED_R / bstr / -24..23, Signature_or_MAC_2: bstr, ? EAD_2), strictly. */
export function parsePlaintext2(
  pt2: Uint8Array,
  suite: EdhocSuite,
  method: EdhocMethod,
): { cR: { id: Uint8Array; raw: Uint8Array }; idCredR: Uint8Array; sigOrMac2: Uint8Array; ead2: EadItem[]; ead2Raw: Uint8Array } {
  const p = new CborDecoder(pt2);
  const cR = readConnectionId(p, 'C_R');
  const idCredR = readIdCred(p);
  const sigOrMac2 = p.bytes('Signature_or_MAC_2');
  const ead2Start = p.offset;
  const ead2 = readEad(p);
  const respondsWithDh = method === 1 || method === 3;
  if (sigOrMac2.length !== (respondsWithDh ? suite.macLength : suite.signatureLength))
    fail('malformed', 'EDHOC: Signature_or_MAC_2 of the wrong length');
  return { cR, idCredR, sigOrMac2, ead2, ead2Raw: pt2.subarray(ead2Start) };
}

// ------------------------------------------------------------------ key schedule

/** EDHOC_KDF(PRK, label, context, length) = EDHOC_Expand(PRK, (label, context, length), length). */
export function edhocKdf(prk: Uint8Array, label: number, context: Uint8Array, length: number): Promise<Uint8Array> {
  return hkdfExpand(prk, encodeSequence([label, context, length]), length);
}

type State = 'start' | 'wait-m2' | 'verified-m2' | 'sent-m3' | 'done' | 'failed';

export interface Message2Result {
  connectionIdR: Uint8Array;
  idCredR: Uint8Array; // map form
  peer: PeerCredential;
  ead2: EadItem[];
}

export class EdhocInitiator {
  readonly suite: EdhocSuite;
  readonly trace: Record<string, Uint8Array> = {};
  private state: State = 'start';
  private eph: EphemeralKey | null = null;
  private m1: Uint8Array | null = null;
  private th3: Uint8Array | null = null;
  private th4: Uint8Array | null = null;
  private gY: Uint8Array | null = null;
  private prk3e2m: Uint8Array | null = null;
  private prk4e3m: Uint8Array | null = null;
  private prkOut: Uint8Array | null = null;
  private prkExporter: Uint8Array | null = null;
  private cR: Uint8Array | null = null;
  private readonly cI: Uint8Array;

  constructor(private readonly cfg: InitiatorConfig) {
    const sel = cfg.suites[cfg.suites.length - 1];
    const suite = sel === undefined ? undefined : suiteById(sel);
    if (suite === undefined) fail('unsupported', `EDHOC: selected cipher suite ${String(sel)} is not supported (2 and 0 are)`);
    if (new Set(cfg.suites).size !== cfg.suites.length) fail('invalid-argument', 'EDHOC: SUITES_I with a repeated suite');
    if (![0, 1, 2, 3].includes(cfg.method)) fail('invalid-argument', 'EDHOC: method 0..3');
    if (cfg.connectionId.length > 7) fail('invalid-argument', 'EDHOC: C_I longer than 7 bytes');
    this.suite = suite;
    this.cI = cfg.connectionId.slice();
  }

  get connectionIdI(): Uint8Array {
    return this.cI;
  }

  get connectionIdR(): Uint8Array {
    if (this.cR === null) fail('state', 'EDHOC: C_R is not known yet');
    return this.cR;
  }

  private get respondsWithDh(): boolean {
    return this.cfg.method === 1 || this.cfg.method === 3;
  }

  private get initiatesWithDh(): boolean {
    return this.cfg.method === 2 || this.cfg.method === 3;
  }

  private note(name: string, v: Uint8Array): void {
    if (this.cfg.recordTrace) this.trace[name] = v.slice();
  }

  private expect(s: State): void {
    if (this.state !== s) fail('state', `EDHOC: not in state ${s} (in ${this.state})`);
  }

  private async guard<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e: unknown) {
      this.abort();
      throw e;
    }
  }

  /** Ends the session and forgets its secrets. */
  abort(): void {
    this.state = 'failed';
    this.eph = null;
    wipe(this.prk3e2m, this.prk4e3m, this.prkOut, this.prkExporter);
    this.prk3e2m = this.prk4e3m = this.prkOut = this.prkExporter = null;
  }

  /** message_1 = (METHOD, SUITES_I, G_X, C_I, ? EAD_1) */
  async message1(): Promise<Uint8Array> {
    this.expect('start');
    return this.guard(async () => {
      this.eph = this.cfg.ephemeral ?? (await this.suite.generateEphemeral());
      if (this.eph.publicKey.length !== this.suite.eccLength) fail('crypto', 'EDHOC: ephemeral key of the wrong size');
      const suites = this.cfg.suites.length === 1 ? encode(this.cfg.suites[0]!) : encode([...this.cfg.suites]);
      this.m1 = concat(encode(this.cfg.method), suites, bstr(this.eph.publicKey), encodeConnectionId(this.cI), encodeEad(this.cfg.ead1));
      this.note('message_1', this.m1);
      this.state = 'wait-m2';
      return this.m1;
    });
  }

  /** Processes message_2 (or the responder's error message: EdhocPeerError). */
  async processMessage2(msg: Uint8Array): Promise<Message2Result> {
    this.expect('wait-m2');
    return this.guard(async () => {
      if (isErrorMessage(msg)) throw parseErrorMessage(msg);
      const s = this.suite;
      const d = new CborDecoder(msg);
      const body = d.bytes('message_2');
      if (!d.atEnd()) fail('malformed', 'EDHOC: message_2 must be exactly one byte string');
      if (body.length <= s.eccLength) fail('malformed', 'EDHOC: message_2 too short');
      const gY = body.slice(0, s.eccLength);
      const ct2 = body.subarray(s.eccLength);
      const hM1 = await sha256(this.m1!);
      const th2 = await sha256(concat(bstr(gY), bstr(hM1)));
      this.note('th_2', th2);
      const gXY = await s.ecdh(this.eph!.privateKey, gY);
      this.note('g_xy', gXY);
      const prk2e = await hkdfExtract(th2, gXY);
      wipe(gXY);
      this.note('prk_2e', prk2e);
      const ks = await edhocKdf(prk2e, 0, th2, ct2.length);
      const pt2 = xor(ct2, ks);
      wipe(ks);
      this.note('plaintext_2', pt2);

      const { cR, idCredR, sigOrMac2, ead2, ead2Raw } = parsePlaintext2(pt2, s, this.cfg.method);
      if (bytesEqual(cR.id, this.cI)) fail('malformed', 'EDHOC: C_R equals C_I');
      const macLen2 = this.respondsWithDh ? s.macLength : s.hashLength;

      const peer = await this.cfg.lookupPeer(idCredR);

      const salt3e2m = await edhocKdf(prk2e, 1, th2, s.hashLength);
      this.note('salt_3e2m', salt3e2m);
      let prk3e2m: Uint8Array;
      if (this.respondsWithDh) {
        const gRX = await s.ecdh(this.eph!.privateKey, peer.publicKey);
        this.note('g_rx', gRX);
        prk3e2m = await hkdfExtract(salt3e2m, gRX);
        wipe(gRX);
      } else prk3e2m = prk2e.slice();
      wipe(salt3e2m, prk2e);
      this.note('prk_3e2m', prk3e2m);

      const context2 = concat(cR.raw, idCredR, bstr(th2), peer.cred, ead2Raw);
      const mac2 = await edhocKdf(prk3e2m, 2, context2, macLen2);
      this.note('mac_2', mac2);
      let ok: boolean;
      if (this.respondsWithDh) ok = ctEqual(mac2, sigOrMac2);
      else ok = await s.verify(peer.publicKey, sigOrMac2, sigStructure(idCredR, concat(bstr(th2), peer.cred, ead2Raw), mac2));
      if (!ok) fail('auth', `EDHOC: the responder's ${this.respondsWithDh ? 'MAC_2' : 'signature'} does not verify`);

      this.th3 = await sha256(concat(bstr(th2), pt2, peer.cred));
      this.note('th_3', this.th3);
      wipe(pt2);
      this.gY = gY;
      this.prk3e2m = prk3e2m;
      this.cR = cR.id;
      if (!this.initiatesWithDh) this.eph = null; // the ephemeral key is not needed any more
      this.state = 'verified-m2';
      return { connectionIdR: cR.id, idCredR, peer, ead2 };
    });
  }

  /** message_3 = (CIPHERTEXT_3); afterwards PRK_out, the exporter and the OSCORE parameters are available. */
  async message3(): Promise<Uint8Array> {
    this.expect('verified-m2');
    return this.guard(async () => {
      const s = this.suite;
      const th3 = this.th3!;
      const own = this.cfg.credential;
      const salt4e3m = await edhocKdf(this.prk3e2m!, 5, th3, s.hashLength);
      this.note('salt_4e3m', salt4e3m);
      let prk4e3m: Uint8Array;
      if (this.initiatesWithDh) {
        const gIY = await s.ecdh(own.privateKey, this.gY!);
        this.note('g_iy', gIY);
        prk4e3m = await hkdfExtract(salt4e3m, gIY);
        wipe(gIY);
      } else prk4e3m = this.prk3e2m!.slice();
      wipe(salt4e3m);
      this.note('prk_4e3m', prk4e3m);
      this.eph = null;

      const ead3 = encodeEad(this.cfg.ead3);
      const context3 = concat(own.idCred, bstr(th3), own.cred, ead3);
      const macLen3 = this.initiatesWithDh ? s.macLength : s.hashLength;
      const mac3 = await edhocKdf(prk4e3m, 6, context3, macLen3);
      this.note('mac_3', mac3);
      const sigOrMac3 = this.initiatesWithDh ? mac3 : await s.sign(own.privateKey, sigStructure(own.idCred, concat(bstr(th3), own.cred, ead3), mac3));
      const pt3 = concat(compactIdCred(own.idCred), bstr(sigOrMac3), ead3);
      this.note('plaintext_3', pt3);
      const k3 = await edhocKdf(this.prk3e2m!, 3, th3, s.aeadKeyLength);
      const iv3 = await edhocKdf(this.prk3e2m!, 4, th3, s.aeadNonceLength);
      this.note('k_3', k3);
      this.note('iv_3', iv3);
      const aead = await AesCcm.create(k3, { tagLength: s.aeadTagLength, nonceLength: s.aeadNonceLength });
      const ct3 = await aead.encrypt(iv3, pt3, encStructure(new Uint8Array(0), th3));
      wipe(k3, iv3);
      const m3 = bstr(ct3);
      this.note('message_3', m3);

      this.th4 = await sha256(concat(bstr(th3), pt3, own.cred));
      wipe(pt3);
      this.note('th_4', this.th4);
      this.prk4e3m = prk4e3m;
      this.prkOut = await edhocKdf(prk4e3m, 7, this.th4, s.hashLength);
      this.prkExporter = await edhocKdf(this.prkOut, 10, new Uint8Array(0), s.hashLength);
      this.note('prk_out', this.prkOut);
      this.note('prk_exporter', this.prkExporter);
      wipe(this.prk3e2m);
      this.prk3e2m = null;
      this.state = 'sent-m3';
      return m3;
    });
  }

  /** Optional message_4 = (CIPHERTEXT_4); returns EAD_4. */
  async processMessage4(msg: Uint8Array): Promise<EadItem[]> {
    this.expect('sent-m3');
    return this.guard(async () => {
      if (isErrorMessage(msg)) throw parseErrorMessage(msg);
      const s = this.suite;
      const d = new CborDecoder(msg);
      const ct4 = d.bytes('message_4');
      if (!d.atEnd()) fail('malformed', 'EDHOC: message_4 must be exactly one byte string');
      const k4 = await edhocKdf(this.prk4e3m!, 8, this.th4!, s.aeadKeyLength);
      const iv4 = await edhocKdf(this.prk4e3m!, 9, this.th4!, s.aeadNonceLength);
      const aead = await AesCcm.create(k4, { tagLength: s.aeadTagLength, nonceLength: s.aeadNonceLength });
      wipe(k4);
      const pt4 = await aead.decrypt(iv4, ct4, encStructure(new Uint8Array(0), this.th4!));
      this.state = 'done';
      return readEad(new CborDecoder(pt4));
    });
  }

  /** The handshake is complete (message_3 sent; message_4 processed or not used). */
  complete(): void {
    if (this.state !== 'sent-m3' && this.state !== 'done') fail('state', 'EDHOC: the handshake is not complete');
    this.state = 'done';
    wipe(this.prk4e3m);
    this.prk4e3m = null;
  }

  /** EDHOC_Exporter(label, context, length) = EDHOC_KDF(PRK_exporter, label, context, length). */
  async exporter(label: number, context: Uint8Array, length: number): Promise<Uint8Array> {
    if (this.prkExporter === null) fail('state', 'EDHOC: no PRK_exporter (handshake not complete)');
    return edhocKdf(this.prkExporter, label, context, length);
  }

  /** Key update (RFC 9528 Appendix H): new PRK_out and PRK_exporter from a context. */
  async keyUpdate(context: Uint8Array): Promise<void> {
    if (this.prkOut === null) fail('state', 'EDHOC: no PRK_out (handshake not complete)');
    const out = await edhocKdf(this.prkOut, 11, context, this.suite.hashLength);
    const exp = await edhocKdf(out, 10, new Uint8Array(0), this.suite.hashLength);
    wipe(this.prkOut, this.prkExporter);
    this.prkOut = out;
    this.prkExporter = exp;
    this.note('prk_out', out);
    this.note('prk_exporter', exp);
  }

  /** OSCORE Master Secret / Salt and IDs (Appendix A.1): our Sender ID is C_R, Recipient ID is C_I. */
  async oscoreParams(): Promise<{ masterSecret: Uint8Array; masterSalt: Uint8Array; senderId: Uint8Array; recipientId: Uint8Array }> {
    return {
      masterSecret: await this.exporter(0, new Uint8Array(0), 16),
      masterSalt: await this.exporter(1, new Uint8Array(0), 8),
      senderId: this.connectionIdR.slice(),
      recipientId: this.cI.slice(),
    };
  }

  /** Forgets every secret. */
  destroy(): void {
    if (this.state !== 'failed') this.state = 'done';
    this.eph = null;
    wipe(this.prk3e2m, this.prk4e3m, this.prkOut, this.prkExporter);
    this.prk3e2m = this.prk4e3m = this.prkOut = this.prkExporter = null;
  }
}

/** A printable description of an EDHOC error message (for logs: no secrets are in it). */
export function describeError(msg: Uint8Array): string {
  try {
    return parseErrorMessage(msg).message;
  } catch {
    return 'a malformed EDHOC error message';
  }
}

