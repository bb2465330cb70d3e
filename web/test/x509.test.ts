/**
 * X.509: the strict DER reader and the chain check of the core's
 * credential, on a PKI of the Cloister profile made with the openssl CLI
 * (root, intermediate CA with pathlen 0, leaf), plus refusals.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hx, loadVectors, obj } from './helpers.js';
import { concat, toHex } from '../src/protocol/bytes.js';
import { ProtocolError } from '../src/protocol/errors.js';
import { parseCertificate, pemToDer, thumbprint, verifyCoreCredential, verifyIssued } from '../src/protocol/x509.js';
import { sha256 } from '../src/protocol/webcrypto.js';

const CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ca0]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth,serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[odd]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
1.3.6.1.4.1.99999.1 = critical,ASN1:NULL
`;

const der: Record<string, Uint8Array> = {};
let haveOpenssl = true;

before(() => {
  const dir = mkdtempSync(join(tmpdir(), 'cloister-x509.'));
  try {
    const cnf = join(dir, 'openssl.cnf');
    writeFileSync(cnf, CNF);
    const ossl = (...args: string[]): void => {
      execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    };
    const key = (n: string): void => ossl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${n}.key`);
    const root = (n: string, cn: string): void => {
      key(n);
      ossl('req', '-x509', '-new', '-key', `${n}.key`, '-subj', `/CN=${cn}`, '-days', '30', '-sha256', '-config', cnf, '-extensions', 'root', '-outform', 'DER', '-out', `${n}.der`);
      ossl('x509', '-inform', 'DER', '-in', `${n}.der`, '-out', `${n}.pem`);
    };
    const issue = (n: string, cn: string, by: string, ext: string, serial: number): void => {
      key(n);
      ossl('req', '-new', '-key', `${n}.key`, '-subj', `/OU=role:test/CN=${cn}`, '-config', cnf, '-out', `${n}.csr`);
      ossl('x509', '-req', '-in', `${n}.csr`, '-CA', `${by}.pem`, '-CAkey', `${by}.key`, '-set_serial', String(serial), '-days', '30', '-sha256',
        '-extfile', cnf, '-extensions', ext, '-outform', 'DER', '-out', `${n}.der`);
    };
    root('root', 'Test owner');
    root('other', 'Someone else');
    issue('ca', 'Test core CA', 'root', 'ca0', 2);
    issue('identity', 'Test core', 'root', 'leaf', 3);
    issue('ca_nopathlen', 'Loose CA', 'root', 'ca', 4);
    issue('identity_ca', 'Core as CA', 'root', 'ca0', 5);
    issue('foreign_ca', 'Foreign CA', 'other', 'ca0', 6);
    issue('odd', 'Odd leaf', 'root', 'odd', 7);
    for (const n of ['root', 'other', 'ca', 'identity', 'ca_nopathlen', 'identity_ca', 'foreign_ca', 'odd']) der[n] = readFileSync(join(dir, `${n}.der`));
    der['root_pem_text'] = readFileSync(join(dir, 'root.pem'));
  } catch {
    haveOpenssl = false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const isCert = (e: unknown) => e instanceof ProtocolError && e.code === 'certificate';
const now = () => Math.floor(Date.now() / 1000);

test('parse: the fields of the Cloister profile; PEM; x5t', async (t) => {
  if (!haveOpenssl) return t.skip('no openssl CLI');
  const c = parseCertificate(der['ca']!);
  assert.equal(c.cn, 'Test core CA');
  assert.equal(c.ou, 'role:test');
  assert.equal(c.isCa, true);
  assert.equal(c.pathLen, 0);
  assert.equal(c.publicKey.length, 65);
  assert.equal(toHex(c.serial), '02');
  assert.ok(c.notAfter - c.notBefore >= 29 * 86400);
  const leaf = parseCertificate(der['identity']!);
  assert.equal(leaf.isCa, false);
  assert.equal(leaf.pathLen, null);
  const root = parseCertificate(der['root']!);
  assert.ok(root.selfIssued);
  assert.equal(toHex(pemToDer(new TextDecoder().decode(der['root_pem_text']!))), toHex(der['root']!));
  assert.equal(toHex(await thumbprint(der['identity']!)), toHex((await sha256(der['identity']!)).slice(0, 8)));
});

test('chain: identity and CA issued by the owner root are accepted; pins are enforced', async (t) => {
  if (!haveOpenssl) return t.skip('no openssl CLI');
  const r = await verifyCoreCredential(der['identity']!, der['ca']!, der['root']!, now());
  assert.equal(r.identity.cn, 'Test core');
  await verifyCoreCredential(der['identity']!, der['ca']!, der['root']!, now(), { ca: der['ca'], identity: der['identity'] });
  await assert.rejects(verifyCoreCredential(der['identity']!, der['ca']!, der['root']!, now(), { ca: der['ca_nopathlen'] }), isCert);
  await assert.rejects(verifyCoreCredential(der['identity']!, der['ca']!, der['root']!, now(), { identity: der['ca'] }), isCert);
});

test('chain refusals: wrong root, foreign CA, CA without pathlen 0, a CA as identity, expiry, tampered signature', async (t) => {
  if (!haveOpenssl) return t.skip('no openssl CLI');
  await assert.rejects(verifyCoreCredential(der['identity']!, der['ca']!, der['other']!, now()), isCert, 'another owner root');
  await assert.rejects(verifyCoreCredential(der['identity']!, der['foreign_ca']!, der['root']!, now()), isCert, 'a CA of another root');
  await assert.rejects(verifyCoreCredential(der['identity']!, der['ca_nopathlen']!, der['root']!, now()), isCert, 'CA without pathlen 0');
  await assert.rejects(verifyCoreCredential(der['identity_ca']!, der['ca']!, der['root']!, now()), isCert, 'the identity is a CA');
  await assert.rejects(verifyIssued(parseCertificate(der['identity']!), parseCertificate(der['root']!), now() + 365 * 86400), isCert, 'expired');
  await assert.rejects(verifyIssued(parseCertificate(der['identity']!), parseCertificate(der['root']!), now() - 86400), isCert, 'not yet valid');
  await assert.rejects(verifyIssued(parseCertificate(der['identity']!), parseCertificate(der['ca']!), now()), isCert, 'names do not chain');
  const bad = der['identity']!.slice();
  bad[bad.length - 3] = (bad[bad.length - 3] as number) ^ 1; // inside the signature
  let refused = false;
  try {
    await verifyIssued(parseCertificate(bad), parseCertificate(der['root']!), now());
  } catch (e: unknown) {
    refused = isCert(e) || (e instanceof ProtocolError && e.code === 'malformed');
  }
  assert.ok(refused, 'a tampered signature is refused');
  const tbsFlip = der['identity']!.slice();
  const cn = tbsFlip.indexOf(0x54, 100); // a byte inside the subject ('T' of "Test core")
  tbsFlip[cn] = 0x55;
  await assert.rejects(verifyIssued(parseCertificate(tbsFlip), parseCertificate(der['root']!), now()), isCert, 'a changed TBS');
});

test('strict DER: trailing bytes, truncation, unknown critical extension, non-P-256 keys', async (t) => {
  if (!haveOpenssl) return t.skip('no openssl CLI');
  assert.throws(() => parseCertificate(concat(der['ca']!, new Uint8Array([0]))), isCert);
  assert.throws(() => parseCertificate(der['ca']!.subarray(0, der['ca']!.length - 1)), isCert);
  const longLen = concat(new Uint8Array([0x30, 0x83, 0x00]), der['ca']!.subarray(2)); // non-minimal length of the outer SEQUENCE
  assert.throws(() => parseCertificate(longLen), isCert);
  assert.throws(() => parseCertificate(der['odd']!), isCert, 'an unknown critical extension');
  // RFC 9529 trace 1's certificates are Ed25519: not of this profile
  const t1 = obj(obj(obj(loadVectors('edhoc-rfc9529.json'))['trace_1'])['values']);
  assert.throws(() => parseCertificate(hx(t1, 'cred_r')), isCert);
});
