/** AES-CCM (RFC 3610, NIST CAVP, SP 800-38C) and HKDF-SHA-256 (RFC 5869) vectors, and tag tampering. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arr, hx, loadVectors, obj } from './helpers.js';
import { AesCcm } from '../src/protocol/ccm.js';
import { hkdfExpand, hkdfExtract } from '../src/protocol/hkdf.js';
import { toHex } from '../src/protocol/bytes.js';
import { ProtocolError } from '../src/protocol/errors.js';

const ccm = obj(loadVectors('aes-ccm-rfc3610.json'));
const main = obj(ccm['aes_ccm_16_64_128']);
const vectors = [
  ...arr(main['rfc3610_packet_vectors']),
  ...arr(main['nist_cavp']),
  ...arr(obj(ccm['other_parameters'])['sp800_38c_examples']),
].map((v) => obj(v));

test('AES-CCM vectors: encrypt to ciphertext||tag and decrypt back', async () => {
  assert.ok(vectors.length >= 17, `expected at least 17 CCM vectors, found ${vectors.length}`);
  for (const v of vectors) {
    const tagLength = Number(v['tag_length']);
    const nonceLength = Number(v['nonce_length']);
    const c = await AesCcm.create(hx(v, 'key'), { tagLength, nonceLength });
    // SP 800-38C example 4: 65536 bytes of AAD, byte i = i mod 256 (the 0xfffe long-length form)
    const aad = v['aad'] === null ? Uint8Array.from({ length: Number(v['aad_length']) }, (_, i) => i % 256) : hx(v, 'aad');
    const out = await c.encrypt(hx(v, 'nonce'), hx(v, 'plaintext'), aad);
    assert.equal(toHex(out), toHex(hx(v, 'ciphertext_and_tag')), String(v['name']));
    const back = await c.decrypt(hx(v, 'nonce'), out, aad);
    assert.equal(toHex(back), toHex(hx(v, 'plaintext')), String(v['name']));
  }
});

test('AES-CCM refuses a flipped bit in the tag, the ciphertext or the AAD', async () => {
  const v = vectors[0]!;
  const c = await AesCcm.create(hx(v, 'key'));
  const good = hx(v, 'ciphertext_and_tag');
  for (const where of [good.length - 1, 0]) {
    const bad = good.slice();
    bad[where] = (bad[where] as number) ^ 1;
    await assert.rejects(c.decrypt(hx(v, 'nonce'), bad, hx(v, 'aad')), (e: unknown) => e instanceof ProtocolError && e.code === 'auth');
  }
  const aad = hx(v, 'aad');
  aad[0] = (aad[0] as number) ^ 0x80;
  await assert.rejects(c.decrypt(hx(v, 'nonce'), good, aad), (e: unknown) => e instanceof ProtocolError && e.code === 'auth');
  await assert.rejects(c.decrypt(hx(v, 'nonce'), good.subarray(0, 7), hx(v, 'aad')), (e: unknown) => e instanceof ProtocolError && e.code === 'auth');
});

test('HKDF-SHA-256 (RFC 5869 A.1-A.3): Extract and Expand', async () => {
  const h = obj(loadVectors('hkdf-rfc5869.json'));
  const cases = arr(h['test_cases']).map((c) => obj(c));
  assert.equal(cases.length, 3);
  for (const c of cases) {
    const prk = await hkdfExtract(hx(c, 'salt'), hx(c, 'ikm'));
    assert.equal(toHex(prk), toHex(hx(c, 'prk')));
    const okm = await hkdfExpand(prk, hx(c, 'info'), Number(c['l']));
    assert.equal(toHex(okm), toHex(hx(c, 'okm')));
  }
});
