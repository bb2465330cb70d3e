/**
 * The protocol core of Cloister's browser client: one import for the UI.
 * Runs unchanged in browsers and in Node >= 18 (WebCrypto, fetch).
 */
export * from './errors.js';
export { toHex, fromHex, toBase64url, fromBase64url, utf8, fromUtf8, concat, bytesEqual, ctEqual } from './bytes.js';
export * as cbor from './cbor.js';
export * as coap from './coap.js';
export * as cose from './cose.js';
export { AesCcm } from './ccm.js';
export { hkdf, hkdfExtract, hkdfExpand, hmacSha256 } from './hkdf.js';
export { SUITE_0, SUITE_2, type EdhocSuite, type EphemeralKey, generateP256SigningKey, exportP256Public } from './ec.js';
export * as oscore from './oscore.js';
export { OscoreContext } from './oscore.js';
export * as edhoc from './edhoc.js';
export { EdhocInitiator, EdhocPeerError } from './edhoc.js';
export * as x509 from './x509.js';
export { parseCertificate, verifyCoreCredential, pemToDer } from './x509.js';
export {
  Session,
  MemoryIdentityStore,
  CoreError,
  UnprotectedAnswer,
  coreError,
  isRecord,
  encodeKccs,
  type SessionOptions,
  type StoredIdentity,
  type IdentityStore,
  type Enrollment,
  type Attestation,
  type CoreResponse,
  type RequestOptions,
  type Method,
} from './session.js';
