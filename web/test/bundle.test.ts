/** The browser bundle (dist/, built by `npm run build`) works: an RFC 8613 C.4 request through it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { hx, loadVectors, arr, obj } from './helpers.js';

const bundle = new URL('../../dist/cloister-protocol.js', import.meta.url);

interface BundleApi {
  toHex(b: Uint8Array): string;
  OscoreContext: {
    create(p: { masterSecret: Uint8Array; masterSalt: Uint8Array; senderId: Uint8Array; recipientId: Uint8Array }): Promise<{
      setSenderSequenceNumber(n: number): void;
      protectRequest(m: unknown): Promise<{ message: unknown }>;
    }>;
  };
  coap: { decodeMessage(b: Uint8Array): unknown; encodeMessage(m: unknown): Uint8Array };
}

test('dist/cloister-protocol.js: protects the RFC 8613 C.4 request byte for byte', async (t) => {
  if (!existsSync(bundle)) return t.skip('no dist/ bundle (npm run build)');
  const api = (await import(bundle.href)) as BundleApi;
  const V = obj(loadVectors('oscore-rfc8613.json'));
  const d = obj(arr(V['key_derivation'])[0]);
  const v = obj(arr(V['message_protection'])[0]);
  const ctx = await api.OscoreContext.create({ masterSecret: hx(d, 'master_secret'), masterSalt: hx(d, 'master_salt'), senderId: hx(d, 'sender_id'), recipientId: hx(d, 'recipient_id') });
  ctx.setSenderSequenceNumber(20);
  const { message } = await ctx.protectRequest(api.coap.decodeMessage(hx(v, 'unprotected_coap_request')));
  assert.equal(api.toHex(api.coap.encodeMessage(message)), api.toHex(hx(v, 'protected_coap_request')));
});
