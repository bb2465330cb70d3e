/**
 * errors.ts - the one error type of the protocol library.
 *
 * Every failure carries a stable `code` a caller (or the UI) can switch on,
 * and a sentence for a person. Messages never contain keys, plaintext,
 * tokens or other secrets: only sizes, labels and public identifiers.
 */

export type ProtocolErrorCode =
  | 'malformed' // input that does not parse (CBOR, CoAP, DER, EDHOC, OSCORE option ...)
  | 'unsupported' // well-formed but outside what this library implements
  | 'limit' // larger than a bound of this library
  | 'invalid-argument' // a caller error
  | 'crypto' // the crypto provider failed or is missing
  | 'auth' // a tag, MAC or signature did not verify
  | 'replay' // an OSCORE sequence number was seen before (or is too old)
  | 'unknown-context' // no OSCORE security context for this kid
  | 'state' // an operation in the wrong protocol state
  | 'certificate' // a certificate or chain was refused
  | 'peer-error' // the peer answered with an EDHOC error message
  | 'unprotected' // an answer that should have been OSCORE-protected was not
  | 'transport' // HTTP failed or answered something unexpected
  | 'core'; // the trusted core refused a request (4.xx / 5.xx with its error map)

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

export function fail(code: ProtocolErrorCode, message: string): never {
  throw new ProtocolError(code, message);
}
