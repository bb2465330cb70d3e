/**
 * ccm.ts - AES-CCM (RFC 3610, NIST SP 800-38C) built on WebCrypto's AES.
 *
 * WebCrypto has no CCM, but it has the two AES modes CCM is made of, native
 * and constant-time in every engine: AES-CBC gives the CBC-MAC (encrypt
 * B_0 || encoded AAD || padded message with a zero IV; the last block before
 * WebCrypto's own padding block is the MAC) and AES-CTR gives the keystream
 * (one call from counter block A_0: the first 16 bytes are S_0, the rest
 * encrypts the message with A_1, A_2, ...). No AES is implemented here.
 *
 * The key is imported once per use, non-extractable, for both modes; the
 * raw key bytes are not kept. Parameters: M (tag) 4..16 even, L = 15 - nonce
 * length in 2..8; COSE alg 10 (AES-CCM-16-64-128, OSCORE/EDHOC suites 0/2)
 * is M = 8, L = 2, a 16-byte key. Tags are compared in constant time and a
 * failed decryption returns nothing of the plaintext.
 */
import { concat, ctEqual, wipe } from './bytes.js';
import { fail } from './errors.js';
import { buf, subtle, wc } from './webcrypto.js';

export interface CcmParams {
  tagLength: number; // M
  nonceLength: number; // 15 - L
}

/** COSE AES-CCM algorithms (RFC 9053 section 4.2): id -> key bytes, tag, nonce. */
export const COSE_CCM: ReadonlyMap<number, { keyLength: number; tagLength: number; nonceLength: number }> = new Map([
  [10, { keyLength: 16, tagLength: 8, nonceLength: 13 }],
  [11, { keyLength: 32, tagLength: 8, nonceLength: 13 }],
  [12, { keyLength: 16, tagLength: 8, nonceLength: 7 }],
  [13, { keyLength: 32, tagLength: 8, nonceLength: 7 }],
  [30, { keyLength: 16, tagLength: 16, nonceLength: 13 }],
  [31, { keyLength: 32, tagLength: 16, nonceLength: 13 }],
  [32, { keyLength: 16, tagLength: 16, nonceLength: 7 }],
  [33, { keyLength: 32, tagLength: 16, nonceLength: 7 }],
]);

export class AesCcm {
  private constructor(
    private readonly cbc: CryptoKey,
    private readonly ctr: CryptoKey,
    readonly tagLength: number,
    readonly nonceLength: number,
  ) {}

  /** Imports key (16, 24 or 32 bytes) as two non-extractable CryptoKeys. The caller may wipe key afterwards. */
  static async create(key: Uint8Array, params: CcmParams = { tagLength: 8, nonceLength: 13 }): Promise<AesCcm> {
    const { tagLength: m, nonceLength: n } = params;
    if (![16, 24, 32].includes(key.length)) fail('invalid-argument', 'AES key of 16, 24 or 32 bytes expected');
    if (m < 4 || m > 16 || m % 2 !== 0) fail('invalid-argument', 'CCM tag length must be 4..16 and even');
    if (n < 7 || n > 13) fail('invalid-argument', 'CCM nonce length must be 7..13');
    const s = subtle();
    const raw = buf(key);
    const cbc = await wc('AES-CBC key import', () => s.importKey('raw', raw, { name: 'AES-CBC' }, false, ['encrypt']));
    const ctr = await wc('AES-CTR key import', () => s.importKey('raw', raw, { name: 'AES-CTR' }, false, ['encrypt']));
    if (raw !== key) wipe(raw);
    return new AesCcm(cbc, ctr, m, n);
  }

  private get l(): number {
    return 15 - this.nonceLength;
  }

  private checkNonce(nonce: Uint8Array): void {
    if (nonce.length !== this.nonceLength) fail('invalid-argument', `CCM nonce of ${this.nonceLength} bytes expected`);
  }

  private checkLength(len: number): void {
    if (this.l < 6 && len >= 2 ** (8 * this.l)) fail('limit', 'message too long for this CCM length field');
  }

  /** T: the first M bytes of the CBC-MAC over B_0 || AAD || message. */
  private async mac(nonce: Uint8Array, aad: Uint8Array, msg: Uint8Array): Promise<Uint8Array> {
    const l = this.l;
    const b0 = new Uint8Array(16);
    b0[0] = (aad.length > 0 ? 0x40 : 0) | (((this.tagLength - 2) / 2) << 3) | (l - 1);
    b0.set(nonce, 1);
    let len = msg.length;
    for (let i = 15; i >= 16 - l; i--) {
      b0[i] = len & 0xff;
      len = Math.floor(len / 256);
    }
    let aadHead: Uint8Array;
    if (aad.length === 0) aadHead = new Uint8Array(0);
    else if (aad.length < 0xff00) aadHead = new Uint8Array([aad.length >> 8, aad.length & 0xff]);
    else if (aad.length <= 0xffffffff) {
      aadHead = new Uint8Array(6);
      aadHead[0] = 0xff;
      aadHead[1] = 0xfe;
      new DataView(aadHead.buffer).setUint32(2, aad.length);
    } else return fail('limit', 'CCM additional data too long');
    const aadLen = aadHead.length + aad.length;
    const aadPad = (16 - (aadLen % 16)) % 16;
    const msgPad = (16 - (msg.length % 16)) % 16;
    const input = concat(b0, aadHead, aad, new Uint8Array(aadPad), msg, new Uint8Array(msgPad));
    const out = new Uint8Array(
      await wc('AES-CBC', () => subtle().encrypt({ name: 'AES-CBC', iv: new Uint8Array(16) }, this.cbc, buf(input))),
    );
    // out = CBC(input) || CBC(padding block): the MAC is the last block of CBC(input)
    const t = out.slice(input.length - 16, input.length - 16 + this.tagLength);
    wipe(input, out);
    return t;
  }

  /** S_0 || (data XOR S_1 ...): one AES-CTR call from counter block A_0. */
  private async ctrStream(nonce: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
    const l = this.l;
    const a0 = new Uint8Array(16);
    a0[0] = l - 1;
    a0.set(nonce, 1);
    const input = concat(new Uint8Array(16), data);
    const out = new Uint8Array(
      await wc('AES-CTR', () => subtle().encrypt({ name: 'AES-CTR', counter: a0, length: Math.min(8 * l, 64) }, this.ctr, buf(input))),
    );
    wipe(input);
    return out;
  }

  /** ciphertext || tag */
  async encrypt(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    this.checkNonce(nonce);
    this.checkLength(plaintext.length);
    const t = await this.mac(nonce, aad, plaintext);
    const s = await this.ctrStream(nonce, plaintext);
    const out = new Uint8Array(plaintext.length + this.tagLength);
    out.set(s.subarray(16));
    for (let i = 0; i < this.tagLength; i++) out[plaintext.length + i] = (t[i] as number) ^ (s[i] as number);
    wipe(s, t);
    return out;
  }

  /** The plaintext, or a ProtocolError 'auth' when the tag does not verify (nothing of the plaintext escapes). */
  async decrypt(nonce: Uint8Array, ciphertextAndTag: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    this.checkNonce(nonce);
    if (ciphertextAndTag.length < this.tagLength) fail('auth', 'ciphertext shorter than the tag');
    const clen = ciphertextAndTag.length - this.tagLength;
    this.checkLength(clen);
    const s = await this.ctrStream(nonce, ciphertextAndTag.subarray(0, clen));
    const plaintext = s.slice(16);
    const t = await this.mac(nonce, aad, plaintext);
    const expected = new Uint8Array(this.tagLength);
    for (let i = 0; i < this.tagLength; i++) expected[i] = (t[i] as number) ^ (s[i] as number);
    const ok = ctEqual(expected, ciphertextAndTag.subarray(clen));
    wipe(s, t, expected);
    if (!ok) {
      wipe(plaintext);
      fail('auth', 'AES-CCM: the authentication tag does not verify');
    }
    return plaintext;
  }
}
