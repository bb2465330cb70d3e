/** RFC 8613 Appendix C (C.1-C.8) byte for byte, the HTTP header mapping, and refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arr, hx, loadVectors, obj, type Json } from './helpers.js';
import { fromHex, toHex } from '../src/protocol/bytes.js';
import { decodeMessage, encodeMessage } from '../src/protocol/coap.js';
import { ProtocolError } from '../src/protocol/errors.js';
import {
  OscoreContext,
  type OscoreParams,
  decodeOscoreOption,
  deriveOscoreKeys,
  encodeOscoreOption,
  oscoreAad,
  oscoreHeaderDecode,
  oscoreHeaderEncode,
  oscoreInfo,
  oscoreNonce,
  ReplayWindow,
} from '../src/protocol/oscore.js';

const V = obj(loadVectors('oscore-rfc8613.json'));
const derivations = arr(V['key_derivation']).map((x) => obj(x));
const protections = arr(V['message_protection']).map((x) => obj(x));

function opt(o: { [k: string]: Json }, key: string): Uint8Array | null {
  return o[key] === null || o[key] === undefined ? null : hx(o, key);
}

function params(id: string): OscoreParams {
  const d = derivations.find((x) => x['id'] === id);
  if (d === undefined) throw new Error(`no context ${id}`);
  const p: OscoreParams = { masterSecret: hx(d, 'master_secret'), senderId: hx(d, 'sender_id'), recipientId: hx(d, 'recipient_id') };
  const salt = opt(d, 'master_salt');
  if (salt !== null) p.masterSalt = salt;
  p.idContext = opt(d, 'id_context');
  return p;
}

const isCode = (code: string) => (e: unknown) => e instanceof ProtocolError && e.code === code;

test('C.1-C.3: key derivation (info, keys, Common IV, nonces) for client and server', async () => {
  assert.equal(derivations.length, 6);
  for (const d of derivations) {
    const p = params(String(d['id']));
    const ctx = p.idContext ?? null;
    assert.equal(toHex(oscoreInfo(p.senderId, ctx, 10, 'Key', 16)), toHex(hx(d, 'info_sender_key')));
    assert.equal(toHex(oscoreInfo(p.recipientId, ctx, 10, 'Key', 16)), toHex(hx(d, 'info_recipient_key')));
    assert.equal(toHex(oscoreInfo(new Uint8Array(0), ctx, 10, 'IV', 13)), toHex(hx(d, 'info_common_iv')));
    const k = await deriveOscoreKeys(p);
    assert.equal(toHex(k.senderKey), toHex(hx(d, 'sender_key')), `${String(d['id'])} sender key`);
    assert.equal(toHex(k.recipientKey), toHex(hx(d, 'recipient_key')));
    assert.equal(toHex(k.commonIv), toHex(hx(d, 'common_iv')));
    assert.equal(toHex(oscoreNonce(k.commonIv, p.senderId, new Uint8Array([0]))), toHex(hx(d, 'sender_nonce_piv0')));
    assert.equal(toHex(oscoreNonce(k.commonIv, p.recipientId, new Uint8Array([0]))), toHex(hx(d, 'recipient_nonce_piv0')));
  }
});

async function clientContext(v: { [k: string]: Json }): Promise<OscoreContext> {
  const c = await OscoreContext.create(params(`${String(v['security_context'])}`));
  c.setSenderSequenceNumber(Number(v['sender_sequence_number']));
  return c;
}

test('C.4-C.6: requests protected byte for byte (with Partial IV, kid, kid context)', async () => {
  for (const id of ['C.4', 'C.5', 'C.6']) {
    const v = protections.find((x) => x['id'] === id)!;
    const c = await clientContext(v);
    const kid = hx(v, 'kid');
    const piv = hx(v, 'partial_iv');
    assert.equal(toHex(oscoreAad(kid, piv)), toHex(hx(v, 'aad')), `${id} AAD`);
    const { message, request } = await c.protectRequest(decodeMessage(hx(v, 'unprotected_coap_request')));
    assert.equal(toHex(encodeMessage(message)), toHex(hx(v, 'protected_coap_request')), `${id} protected request`);
    assert.equal(toHex(request.piv), toHex(piv));
    assert.equal(c.senderSequenceNumber, Number(v['sender_sequence_number']) + 1);
  }
});

test('C.7/C.8: responses without and with Partial IV, protected by the server and verified by the client', async () => {
  const req = protections.find((x) => x['id'] === 'C.4')!;
  for (const id of ['C.7', 'C.8']) {
    const v = protections.find((x) => x['id'] === id)!;
    const client = await clientContext(req);
    const server = await OscoreContext.create(params('C.1.2'));
    server.setSenderSequenceNumber(Number(v['sender_sequence_number']));
    const { message: protReq, request: clientReq } = await client.protectRequest(decodeMessage(hx(req, 'unprotected_coap_request')));
    const { message: plainReq, request: serverReq } = await server.unprotectRequest(decodeMessage(encodeMessage(protReq)));
    assert.equal(toHex(encodeMessage(plainReq)), toHex(hx(req, 'unprotected_coap_request')), 'the server sees the original request');
    const resp = await server.protectResponse(decodeMessage(hx(v, 'unprotected_coap_response')), serverReq, id === 'C.8');
    assert.equal(toHex(encodeMessage(resp)), toHex(hx(v, 'protected_coap_response')), `${id} protected response`);
    const back = await client.unprotectResponse(decodeMessage(hx(v, 'protected_coap_response')), clientReq);
    assert.equal(toHex(encodeMessage(back)), toHex(hx(v, 'unprotected_coap_response')), `${id} verified response`);
    // exactly one response per request
    await assert.rejects(client.unprotectResponse(decodeMessage(hx(v, 'protected_coap_response')), clientReq), isCode('replay'));
  }
});

test('refusals: tampered tag, replayed request, wrong kid, truncated message, unprotected answer', async () => {
  const req = protections.find((x) => x['id'] === 'C.4')!;
  const client = await clientContext(req);
  const server = await OscoreContext.create(params('C.1.2'));
  const { message } = await client.protectRequest(decodeMessage(hx(req, 'unprotected_coap_request')));
  const wire = encodeMessage(message);

  const tampered = wire.slice();
  tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
  await assert.rejects(server.unprotectRequest(decodeMessage(tampered)), isCode('auth'), 'tampered tag');

  const truncated = wire.slice(0, wire.length - 9);
  await assert.rejects(server.unprotectRequest(decodeMessage(truncated)), isCode('auth'), 'truncated ciphertext');
  assert.throws(() => decodeMessage(wire.slice(0, 3)), isCode('malformed'), 'truncated header');

  await server.unprotectRequest(decodeMessage(wire)); // the genuine one is accepted once ...
  await assert.rejects(server.unprotectRequest(decodeMessage(wire)), isCode('replay'), '... and refused as a replay');
  // a failed request consumed nothing: the tampered one's number was never committed, the real one is
  const other = await OscoreContext.create(params('C.2.2'));
  await assert.rejects(other.unprotectRequest(decodeMessage(wire)), isCode('unknown-context'), 'wrong kid');

  // a response that comes back without OSCORE is never trusted
  const { request } = await client.protectRequest(decodeMessage(hx(req, 'unprotected_coap_request')));
  const plain = decodeMessage(fromHex('64455d1f00003974ff48656c6c6f'));
  await assert.rejects(client.unprotectResponse(plain, request), isCode('unprotected'));
  // a response verified with the wrong request binding (another Partial IV) fails
  const resp = await server.protectResponse(decodeMessage(hx(protections.find((x) => x['id'] === 'C.7')!, 'unprotected_coap_response')), {
    kid: new Uint8Array(0),
    piv: new Uint8Array([0x14]),
    observe: false,
    answered: false,
    lastNotification: -1,
  });
  await assert.rejects(client.unprotectResponse(resp, request), isCode('auth'));
});

test('replay window: in-window reordering accepted once, old numbers refused', () => {
  const w = new ReplayWindow(32);
  w.commit(5);
  w.commit(3);
  assert.throws(() => w.check(3), isCode('replay'));
  w.commit(40);
  assert.throws(() => w.check(5), isCode('replay')); // fell out of the window
  w.commit(20);
  assert.throws(() => w.check(20), isCode('replay'));
  w.check(21);
  w.commit(100);
  assert.throws(() => w.check(68), isCode('replay'));
  w.check(69);
});

test('OSCORE option and HTTP header (RFC 8613 6.1, 11.1): encodings and strict decoding', () => {
  assert.equal(toHex(encodeOscoreOption({ piv: new Uint8Array([0x14]), kid: new Uint8Array(0) })), '0914');
  assert.equal(toHex(encodeOscoreOption({})), '');
  const o = decodeOscoreOption(fromHex('19140837cbf3210017a2d3'));
  assert.equal(toHex(o.piv!), '14');
  assert.equal(toHex(o.kidContext!), '37cbf3210017a2d3');
  assert.equal(toHex(o.kid!), '');
  for (const bad of ['00', '20', '8914', '0e0102030405060708', '11', '0a14']) {
    assert.throws(() => decodeOscoreOption(fromHex(bad)), isCode('malformed'), bad);
  }
  // RFC 8613 11.5: OSCORE: 09 25 <-> "CSU"; the empty option is "AA"
  assert.equal(oscoreHeaderEncode(fromHex('0925')), 'CSU');
  assert.equal(oscoreHeaderEncode(new Uint8Array(0)), 'AA');
  assert.equal(toHex(oscoreHeaderDecode('CSU')), '0925');
  assert.equal(toHex(oscoreHeaderDecode('AA')), '');
  for (const bad of ['', 'C', 'CSV', 'CS+', 'CS=', 'ABCDE']) assert.throws(() => oscoreHeaderDecode(bad), isCode('malformed'), bad);
});
