/**
 * Interop with the real C server: cloisterd (sim TEE, core in-process) on
 * loopback in a temporary directory, provisioned with the `cloister` CLI as
 * scripts/demo.sh does; then, from this process, the browser library:
 * enroll with a token, sign in, GET /whoami, create an event type, publish
 * events (one, then a batch large enough for inner Block1), read the
 * history (large enough for inner Block2), JSON, and the refusals (token
 * reuse, a wrong owner root, an unknown event type, revocation).
 *
 * Binaries: $CLOISTER_BUILD_DIR, else ../build-web, else ../build. Without
 * them the test is skipped, unless CLOISTER_INTEROP_REQUIRED=1 (the `web`
 * stage of scripts/test-all.sh sets it), where that is a failure.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import './helpers.js';
import { CoreError, MemoryIdentityStore, ProtocolError, Session, UnprotectedAnswer, isRecord, pemToDer, toHex } from '../src/protocol/index.js';

const webDir = resolve(fileURLToPath(new URL('../../', import.meta.url)));
const candidates = [process.env['CLOISTER_BUILD_DIR'], join(webDir, '..', 'build-web'), join(webDir, '..', 'build')].filter(
  (d): d is string => d !== undefined && d !== '',
);
const buildDir = candidates.find((d) => existsSync(join(d, 'host', 'cloisterd')) && existsSync(join(d, 'cli', 'cloister')));
const required = process.env['CLOISTER_INTEROP_REQUIRED'] === '1';

let work = '';
let daemon: ChildProcess | null = null;
let server = '';
let coapServer = '';
let ownerRoot: Uint8Array = new Uint8Array(0);

function cli(...args: string[]): string {
  return execFileSync(join(buildDir!, 'cli', 'cloister'), args, { encoding: 'utf8', timeout: 60000, stdio: ['ignore', 'pipe', 'pipe'] });
}

function token(role: string, name: string, publish?: string): string {
  const extra = publish !== undefined ? ['--publish', publish] : [];
  const out = cli('token', 'create', '--owner', join(work, 'owner'), '--role', role, '--ttl', '10m', '--name', name, ...extra, '--json');
  const m = /"token": "([0-9a-f]{32})"/.exec(out);
  assert.ok(m !== null, `no token in: ${out}`);
  return m[1]!;
}

async function waitFile(path: string, ms: number): Promise<string> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (existsSync(path) && statSync(path).size > 0) return readFileSync(path, 'utf8').trim();
    if (daemon?.exitCode !== null && daemon?.exitCode !== undefined) throw new Error(`cloisterd exited (${daemon.exitCode}): ${tail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`cloisterd did not write ${path}: ${tail()}`);
}

function tail(): string {
  try {
    return readFileSync(join(work, 'cloisterd.log'), 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

before(async () => {
  if (buildDir === undefined) return;
  work = mkdtempSync(join(tmpdir(), 'cloister-web-interop.'));
  const { openSync } = await import('node:fs');
  const log = openSync(join(work, 'cloisterd.log'), 'a');
  daemon = spawn(
    join(buildDir, 'host', 'cloisterd'),
    ['--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--runtime', 'sim', '--data', join(work, 'data'), '--platform-dir', join(work, 'platform'),
      '--print-port-file', join(work, 'port'), '--print-http-port-file', join(work, 'http.port')],
    { stdio: ['ignore', log, log] },
  );
  coapServer = `coap://127.0.0.1:${await waitFile(join(work, 'port'), 10000)}`;
  server = `http://127.0.0.1:${await waitFile(join(work, 'http.port'), 10000)}`;
  cli('owner', 'init', '--dir', join(work, 'owner'), '--name', 'Interop owner');
  const m = /mrenclave\s+([0-9a-f]{64})/.exec(cli('measure'));
  assert.ok(m !== null, 'cloister measure printed no MRENCLAVE');
  cli('provision', '--server', coapServer, '--owner', join(work, 'owner'), '--expect-mrenclave', m[1]!, '--allow-simulated');
  ownerRoot = pemToDer(readFileSync(join(work, 'owner', 'owner.pem'), 'utf8'));
});

after(async () => {
  if (daemon !== null && daemon.exitCode === null) {
    const exited = new Promise<number | null>((r) => daemon!.once('exit', (code) => r(code)));
    daemon.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10000))]);
    if (code === 'timeout') daemon.kill('SIGKILL');
    else assert.equal(code, 0, 'cloisterd shuts down cleanly');
  }
  if (work !== '' && process.env['KEEP'] !== '1') rmSync(work, { recursive: true, force: true });
});

const isCode = (code: string) => (e: unknown) => e instanceof ProtocolError && e.code === code;

test('interop with cloisterd: enroll, sign in, whoami, event type, publish, history, JSON, refusals', async (t) => {
  if (buildDir === undefined) {
    if (required) assert.fail(`no cloisterd/cloister build found in ${candidates.join(', ')}`);
    t.skip(`no cloisterd build (looked in ${candidates.join(', ')}); set CLOISTER_BUILD_DIR`);
    return;
  }
  const steps: string[] = [];
  const store = new MemoryIdentityStore();
  const s = new Session({ server, ownerRoot, store, onStep: (l) => steps.push(l) });

  // evidence: public, provisioned, bound to our owner certificate
  const ev = await s.attestation();
  assert.equal(ev.state, 'provisioned');
  assert.equal(ev.backend, 'sim');

  // enroll with a one-time admin token (EDHOC with a kccs, then POST /pki/enroll)
  const tok = token('admin', 'web-admin');
  const en = await s.enroll(tok, 'browser-admin');
  assert.equal(en.role, 'admin');
  assert.ok(en.clientId > 0);
  assert.ok(steps.some((l) => l.includes("core 'Cloister core' verified")), 'the core was verified against the owner root');

  // the token is one-time
  const thief = new Session({ server, ownerRoot });
  await assert.rejects(thief.enroll(tok, 'thief'), (e: unknown) => e instanceof CoreError && e.errorCode === 'token-used');

  // sign in with the certificate, GET /whoami
  await s.signIn();
  assert.ok(s.signedIn);
  const me = await s.call('GET', '/whoami');
  assert.ok(isRecord(me));
  assert.equal(me['id'], en.clientId);
  assert.equal(me['name'], 'browser-admin');
  assert.equal(me['role'], 'admin');

  // JSON both ways (Content-Format 50, Accept 50)
  const js = await s.request('GET', '/whoami', { format: 'json' });
  assert.equal(js.contentFormat, 50);
  assert.deepEqual(js.value, { publish: ['*'], id: en.clientId, name: 'browser-admin', role: 'admin' });

  // an event type, then events
  const created = await s.request('POST', '/event-types', { body: { name: 'temperature', description: 'room temperature', history: ['admin', 'user'] } });
  assert.equal(created.codeText, '2.01');
  const types = await s.call('GET', '/event-types');
  assert.ok(Array.isArray(types) && types.some((x) => isRecord(x) && x['name'] === 'temperature'));

  const marker = `canary-${toHex(crypto.getRandomValues(new Uint8Array(6)))}`;
  assert.deepEqual(await s.call('POST', '/events', { type: 'temperature', properties: { celsius: 21.5, room: marker } }), { accepted: 1 });
  // 20 events in one body: larger than one core message, sent with inner Block1
  const batch = Array.from({ length: 20 }, (_, i) => ({ type: 'temperature', properties: { celsius: 18 + i / 2, room: `${marker}-${'r'.repeat(60)}-${i}` } }));
  assert.deepEqual(await s.call('POST', '/events', batch), { accepted: 20 });
  await assert.rejects(s.call('POST', '/events', { type: 'humidity', properties: {} }), (e: unknown) => e instanceof CoreError && e.errorCode === 'unknown-event-type');

  // history: 21 events, an answer of several 1024-byte blocks (inner Block2)
  const h = await s.request('GET', '/events', { query: { type: 'temperature', limit: 50 } });
  assert.equal(h.codeText, '2.05');
  assert.ok(h.payload.length > 2048, `a multi-block answer (${h.payload.length} bytes)`);
  assert.ok(isRecord(h.value));
  const events = h.value['events'];
  assert.ok(Array.isArray(events));
  assert.equal(events.length, 21);
  const first = events[0];
  assert.ok(isRecord(first));
  assert.equal(first['source'], en.clientId);
  assert.equal(first['type'], 'temperature');
  assert.deepEqual(first['properties'], { celsius: 21.5, room: marker });
  assert.equal(h.value['more'], false);
  assert.deepEqual(Object.keys(h.value).sort(), ['events', 'more', 'skipped']);
  assert.equal(h.value['skipped'], 0);

  // a device enrolled by the admin (its token made over OSCORE) may publish temperature only
  const dt = await s.call('POST', '/pki/tokens', { role: 'device', ttl: 600, name: 'sensor', publish: ['temperature'] });
  assert.ok(isRecord(dt) && dt['token'] instanceof Uint8Array);
  const dev = new Session({ server, ownerRoot });
  const devEn = await dev.enroll(dt['token'] as Uint8Array, 'sensor-1');
  assert.equal(devEn.role, 'device');
  await dev.signIn();
  assert.deepEqual(await dev.call('POST', '/events', { type: 'temperature', properties: { celsius: 19 } }), { accepted: 1 });
  await assert.rejects(dev.call('POST', '/event-types', { name: 'door' }), (e: unknown) => e instanceof CoreError && e.coapCode === '4.03');

  // nothing of the plaintext reached the host's files or log
  const hits: string[] = [];
  const walk = (d: string): void => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (readFileSync(p).includes(marker)) hits.push(p);
    }
  };
  walk(join(work, 'data'));
  if (readFileSync(join(work, 'cloisterd.log')).includes(marker)) hits.push('cloisterd.log');
  assert.deepEqual(hits, [], 'the marker is nowhere on the host');

  // a wrong owner root: the core's chain is refused before anything is sent with our key
  cli('owner', 'init', '--dir', join(work, 'other-owner'), '--name', 'Someone else');
  const otherRoot = pemToDer(readFileSync(join(work, 'other-owner', 'owner.pem'), 'utf8'));
  const wrong = new Session({ server, ownerRoot: otherRoot });
  await assert.rejects(wrong.enroll(token('device', 'never'), 'never'), isCode('certificate'));

  // revocation: live sessions dropped at once, new handshakes refused
  cli('client', 'revoke', String(devEn.clientId), '--owner', join(work, 'owner'));
  await assert.rejects(dev.call('GET', '/whoami'), (e: unknown) => e instanceof UnprotectedAnswer);
  await assert.rejects(dev.signIn(), isCode('peer-error'));

  // a host that tampers with an OSCORE answer is caught (a second session of the same identity)
  let tamper = false;
  const evil = new Session({
    server,
    ownerRoot,
    store,
    fetch: async (url, init) => {
      const r = await fetch(url, init);
      if (!tamper || r.headers.get('oscore') === null) return r;
      const body = new Uint8Array(await r.arrayBuffer());
      body[body.length - 1] = (body[body.length - 1] as number) ^ 1;
      return new Response(body, { status: r.status, headers: r.headers });
    },
  });
  await evil.signIn();
  assert.ok(isRecord(await evil.call('GET', '/whoami')));
  tamper = true;
  await assert.rejects(evil.call('GET', '/whoami'), isCode('auth'));

  // the core's replay window: an OSCORE request captured on the way and sent again is refused
  let captured: { url: string; init: RequestInit } | null = null;
  const recorder = new Session({
    server,
    ownerRoot,
    store,
    fetch: async (url, init) => {
      if (init.headers !== undefined && 'OSCORE' in (init.headers as Record<string, string>)) captured = { url, init };
      return fetch(url, init);
    },
  });
  await recorder.signIn();
  assert.ok(isRecord(await recorder.call('GET', '/whoami')));
  assert.ok(captured !== null);
  const replayed = await fetch((captured as { url: string }).url, (captured as { init: RequestInit }).init);
  assert.equal(replayed.headers.get('oscore'), null, 'a replayed request gets no protected answer');
  assert.notEqual(replayed.status, 200);
  assert.match(await replayed.text(), /[Rr]eplay/);

  // the admin's session still works after all that
  assert.ok(isRecord(await s.call('GET', '/whoami')));
});
