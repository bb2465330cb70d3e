/** RFC 9529 traces 1 (method 0, suite 0) and 2 (method 3, suite 2) byte for byte, the invalid traces, refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arr, hasSuite0, hx, importOkpPrivate, importP256Private, loadVectors, obj, str } from './helpers.js';
import { concat, fromHex, toHex } from '../src/protocol/bytes.js';
import { SUITE_0, SUITE_2, p256Decompress } from '../src/protocol/ec.js';
import { ProtocolError } from '../src/protocol/errors.js';
import { EdhocInitiator, EdhocPeerError, type InitiatorConfig, parseErrorMessage, parsePlaintext2 } from '../src/protocol/edhoc.js';
import { OscoreContext } from '../src/protocol/oscore.js';

const V = obj(loadVectors('edhoc-rfc9529.json'));
const t1 = obj(obj(V['trace_1'])['values']);
const t2 = obj(obj(V['trace_2'])['values']);
const isCode = (code: string) => (e: unknown) => e instanceof ProtocolError && e.code === code;

async function trace2Config(overrides: Partial<InitiatorConfig> = {}): Promise<InitiatorConfig> {
  const v = t2;
  return {
    method: 3,
    suites: [6, 2],
    connectionId: hx(v, 'c_i'),
    credential: {
      idCred: hx(v, 'id_cred_i'),
      cred: hx(v, 'cred_i'),
      privateKey: await importP256Private(hx(v, 'sk_i'), hx(v, 'pk_i_x'), hx(v, 'pk_i_y'), 'ECDH'),
    },
    lookupPeer: async (idCredR) => {
      if (toHex(idCredR) !== toHex(hx(v, 'id_cred_r'))) throw new ProtocolError('certificate', 'unknown ID_CRED_R');
      return { cred: hx(v, 'cred_r'), publicKey: concat(new Uint8Array([4]), hx(v, 'pk_r_x'), hx(v, 'pk_r_y')) };
    },
    ephemeral: {
      privateKey: await importP256Private(hx(v, 'x'), hx(v, 'g_x'), hx(v, 'g_x_y_coordinate'), 'ECDH'),
      publicKey: hx(v, 'g_x'),
    },
    recordTrace: true,
    ...overrides,
  };
}

function checkTrace(e: EdhocInitiator, v: { [k: string]: import('./helpers.js').Json }, names: string[]): void {
  for (const n of names) {
    assert.ok(e.trace[n] !== undefined, `trace has ${n}`);
    assert.equal(toHex(e.trace[n]!), toHex(hx(v, n)), n);
  }
}

test('RFC 9529 trace 2 (method 3, suite 2, static DH, CCS by kid): every value byte for byte', async () => {
  const v = t2;
  const e = new EdhocInitiator(await trace2Config());
  assert.equal(toHex(await e.message1()), toHex(hx(v, 'message_1')));
  const r2 = await e.processMessage2(hx(v, 'message_2'));
  assert.equal(toHex(r2.connectionIdR), toHex(hx(v, 'c_r')));
  assert.equal(toHex(r2.idCredR), toHex(hx(v, 'id_cred_r')));
  checkTrace(e, v, ['th_2', 'g_xy', 'prk_2e', 'plaintext_2', 'salt_3e2m', 'g_rx', 'prk_3e2m', 'mac_2', 'th_3']);
  assert.equal(toHex(await e.message3()), toHex(hx(v, 'message_3')));
  checkTrace(e, v, ['salt_4e3m', 'g_iy', 'prk_4e3m', 'mac_3', 'plaintext_3', 'k_3', 'iv_3', 'th_4', 'prk_out', 'prk_exporter']);
  assert.deepEqual(await e.processMessage4(hx(v, 'message_4')), []);
  const o = await e.oscoreParams();
  assert.equal(toHex(o.masterSecret), toHex(hx(v, 'oscore_master_secret')));
  assert.equal(toHex(o.masterSalt), toHex(hx(v, 'oscore_master_salt')));
  assert.equal(toHex(o.senderId), toHex(hx(v, 'oscore_client_sender_id')));
  assert.equal(toHex(o.recipientId), toHex(hx(v, 'oscore_client_recipient_id')));
  // the exporter's output makes a working OSCORE context
  await OscoreContext.create(o);
  await e.keyUpdate(hx(v, 'key_update_context'));
  assert.equal(toHex(e.trace['prk_out']!), toHex(hx(v, 'key_update_prk_out')));
  assert.equal(toHex(e.trace['prk_exporter']!), toHex(hx(v, 'key_update_prk_exporter')));
  const k = await e.oscoreParams();
  assert.equal(toHex(k.masterSecret), toHex(hx(v, 'key_update_oscore_master_secret')));
  assert.equal(toHex(k.masterSalt), toHex(hx(v, 'key_update_oscore_master_salt')));
});

test('RFC 9529 trace 2 negotiation: suite 6 alone is refused here, error 0202 is understood', async () => {
  const neg = obj(obj(V['trace_2'])['negotiation']);
  const only6 = await trace2Config({ suites: [6] });
  assert.throws(() => new EdhocInitiator(only6), isCode('unsupported'));
  const err = parseErrorMessage(fromHex(str(obj(neg['error'])['error_message'])));
  assert.equal(err.errCode, 2);
  assert.deepEqual(err.suitesR, [2]);
  const e = new EdhocInitiator(await trace2Config());
  await e.message1();
  await assert.rejects(e.processMessage2(fromHex('0202')), (x: unknown) => x instanceof EdhocPeerError && x.errCode === 2);
  await assert.rejects(e.message3(), isCode('state'), 'a failed session stays failed');
});

test('RFC 9529 trace 1 (method 0, suite 0, signatures, X.509 by x5t): byte for byte', async (t) => {
  if (!(await hasSuite0())) {
    t.skip('this platform has no X25519/Ed25519 in WebCrypto');
    return;
  }
  const v = t1;
  const e = new EdhocInitiator({
    method: 0,
    suites: [0],
    connectionId: hx(v, 'c_i'),
    credential: { idCred: hx(v, 'id_cred_i'), cred: hx(v, 'cred_i_cbor'), privateKey: await importOkpPrivate(hx(v, 'sk_i'), hx(v, 'pk_i'), 'Ed25519') },
    lookupPeer: async (idCredR) => {
      if (toHex(idCredR) !== toHex(hx(v, 'id_cred_r'))) throw new ProtocolError('certificate', 'unknown ID_CRED_R');
      return { cred: hx(v, 'cred_r_cbor'), publicKey: hx(v, 'pk_r') };
    },
    ephemeral: { privateKey: await importOkpPrivate(hx(v, 'x'), hx(v, 'g_x'), 'X25519'), publicKey: hx(v, 'g_x') },
    recordTrace: true,
  });
  assert.equal(toHex(await e.message1()), toHex(hx(v, 'message_1')));
  const r2 = await e.processMessage2(hx(v, 'message_2'));
  assert.equal(toHex(r2.connectionIdR), toHex(hx(v, 'c_r')));
  checkTrace(e, v, ['th_2', 'g_xy', 'prk_2e', 'plaintext_2', 'prk_3e2m', 'mac_2', 'th_3']);
  assert.equal(toHex(await e.message3()), toHex(hx(v, 'message_3')));
  checkTrace(e, v, ['prk_4e3m', 'mac_3', 'plaintext_3', 'k_3', 'iv_3', 'th_4', 'prk_out', 'prk_exporter']);
  assert.deepEqual(await e.processMessage4(hx(v, 'message_4')), []);
  const o = await e.oscoreParams();
  assert.equal(toHex(o.masterSecret), toHex(hx(v, 'oscore_master_secret')));
  assert.equal(toHex(o.masterSalt), toHex(hx(v, 'oscore_master_salt')));
  assert.equal(toHex(o.senderId), toHex(hx(v, 'oscore_client_sender_id')));
  await e.keyUpdate(hx(v, 'key_update_context'));
  assert.equal(toHex((await e.oscoreParams()).masterSecret), toHex(hx(v, 'key_update_oscore_master_secret')));
});

test('RFC 9529 section 4: the invalid messages an initiator receives are refused', async () => {
  const cases = arr(obj(V['invalid_traces'])['cases']).map((c) => obj(c));
  let n = 0;
  for (const c of cases) {
    const item = str(c['invalid_item']);
    const bytes = fromHex(str(c['hex']));
    if (item === 'PLAINTEXT_2') {
      assert.throws(() => parsePlaintext2(bytes, SUITE_2, 3), isCode('malformed'), str(c['name']));
      n++;
    } else if (item === 'message_2') {
      const e = new EdhocInitiator(await trace2Config());
      await e.message1();
      await assert.rejects(e.processMessage2(bytes), isCode('malformed'), str(c['name']));
      n++;
    }
  }
  assert.equal(n, 4, 'message_2 and PLAINTEXT_2 cases');
  // the public keys of the section 4 message_1 cases, received as a peer's G_Y, are refused too
  assert.throws(() => p256Decompress(fromHex('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff')), isCode('malformed'));
  assert.throws(() => p256Decompress(fromHex('a04e73601df544a70ba7ea1e57030f7d4b4eb7f673924e58d54ca77a5e7d4d4a')), isCode('malformed'));
  assert.throws(() => p256Decompress(fromHex('d9697725d23a688b12d1c7e0108a08c9f71a85a09c20814976ab21122248fc')), isCode('malformed'));
  if (await hasSuite0()) {
    const eph = await SUITE_0.generateEphemeral();
    await assert.rejects(SUITE_0.ecdh(eph.privateKey, fromHex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')), isCode('malformed'));
  }
});

test('refusals: tampered message_2, truncated message_2, wrong responder credential or key', async () => {
  const v = t2;
  const m2 = hx(v, 'message_2');
  const flip = m2.slice();
  flip[flip.length - 1] = (flip[flip.length - 1] as number) ^ 1; // inside the encrypted MAC_2
  let e = new EdhocInitiator(await trace2Config());
  await e.message1();
  await assert.rejects(e.processMessage2(flip), isCode('auth'), 'tampered MAC_2');

  e = new EdhocInitiator(await trace2Config());
  await e.message1();
  await assert.rejects(e.processMessage2(m2.slice(0, m2.length - 3)), isCode('malformed'), 'truncated');

  e = new EdhocInitiator(
    await trace2Config({
      lookupPeer: async () => {
        throw new ProtocolError('certificate', 'not the pinned responder');
      },
    }),
  );
  await e.message1();
  await assert.rejects(e.processMessage2(m2), isCode('certificate'), 'credential refused');

  // the right CRED_R but another static key: MAC_2 fails
  const other = await SUITE_2.generateEphemeral();
  e = new EdhocInitiator(
    await trace2Config({ lookupPeer: async () => ({ cred: hx(v, 'cred_r'), publicKey: p256Decompress(other.publicKey) }) }),
  );
  await e.message1();
  await assert.rejects(e.processMessage2(m2), isCode('auth'), 'wrong responder key');

});
