/**
 * coap.ts - CoAP messages (RFC 7252) as OSCORE needs them: the header,
 * token, options (delta encoding) and payload of a message, both ways, plus
 * Block1/Block2 (RFC 7959) option values. Over HTTP there is no CoAP on the
 * wire, but OSCORE protects a CoAP message, so the client builds one.
 *
 * Parsing is strict: version 1, TKL <= 8, reserved nibble 15 refused,
 * no payload marker without payload, an empty message has nothing after
 * the header.
 */
import { concat, fromUtf8, utf8 } from './bytes.js';
import { fail } from './errors.js';

export const TYPE_CON = 0;
export const TYPE_NON = 1;
export const TYPE_ACK = 2;
export const TYPE_RST = 3;

export const code = (cls: number, detail: number): number => (cls << 5) | detail;
export const GET = 1;
export const POST = 2;
export const PUT = 3;
export const DELETE = 4;
export const FETCH = 5;
export const CHANGED = code(2, 4);
export const CONTENT = code(2, 5);
export const CONTINUE = code(2, 31);

export const OPT_IF_MATCH = 1;
export const OPT_URI_HOST = 3;
export const OPT_ETAG = 4;
export const OPT_OBSERVE = 6;
export const OPT_URI_PORT = 7;
export const OPT_LOCATION_PATH = 8;
export const OPT_OSCORE = 9;
export const OPT_URI_PATH = 11;
export const OPT_CONTENT_FORMAT = 12;
export const OPT_MAX_AGE = 14;
export const OPT_URI_QUERY = 15;
export const OPT_HOP_LIMIT = 16;
export const OPT_ACCEPT = 17;
export const OPT_EDHOC = 21;
export const OPT_BLOCK2 = 23;
export const OPT_BLOCK1 = 27;
export const OPT_SIZE2 = 28;
export const OPT_PROXY_URI = 35;
export const OPT_PROXY_SCHEME = 39;
export const OPT_SIZE1 = 60;
export const OPT_ECHO = 252;

export const CF_TEXT = 0;
export const CF_JSON = 50;
export const CF_CBOR = 60;

export interface CoapOption {
  number: number;
  value: Uint8Array;
}

export interface CoapMessage {
  type: number;
  code: number;
  messageId: number;
  token: Uint8Array;
  options: CoapOption[]; // in any order; encoding sorts them (stable)
  payload: Uint8Array;
}

export function codeString(c: number): string {
  return `${c >> 5}.${String(c & 31).padStart(2, '0')}`;
}

export function isRequestCode(c: number): boolean {
  return c >= 1 && c <= 31;
}

/** Minimal big-endian uint option value (0 = empty). */
export function uintOption(v: number): Uint8Array {
  if (!Number.isSafeInteger(v) || v < 0 || v > 0xffffffff) fail('invalid-argument', 'option value out of range');
  const out: number[] = [];
  for (let x = v; x > 0; x = Math.floor(x / 256)) out.unshift(x % 256);
  return new Uint8Array(out);
}

export function optionUint(o: CoapOption): number {
  if (o.value.length > 4) fail('malformed', `option ${o.number}: uint longer than 4 bytes`);
  let v = 0;
  for (const b of o.value) v = v * 256 + b;
  return v;
}

export function getOption(m: { options: CoapOption[] }, number: number): CoapOption | undefined {
  return m.options.find((o) => o.number === number);
}

export function getOptions(m: { options: CoapOption[] }, number: number): CoapOption[] {
  return m.options.filter((o) => o.number === number);
}

/** Options sorted by number, the order of repeated options kept. */
export function sortOptions(options: readonly CoapOption[]): CoapOption[] {
  return options.map((o, i) => ({ o, i })).sort((a, b) => a.o.number - b.o.number || a.i - b.i).map((x) => x.o);
}

function ext(v: number): { nibble: number; bytes: number[] } {
  if (v < 13) return { nibble: v, bytes: [] };
  if (v < 269) return { nibble: 13, bytes: [v - 13] };
  if (v < 65805) return { nibble: 14, bytes: [(v - 269) >> 8, (v - 269) & 0xff] };
  return fail('invalid-argument', 'option delta or length too large');
}

/** The option part of a message (sorted, delta-encoded), without a payload marker. */
export function encodeOptions(options: readonly CoapOption[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let prev = 0;
  for (const o of sortOptions(options)) {
    const d = ext(o.number - prev);
    const l = ext(o.value.length);
    parts.push(new Uint8Array([(d.nibble << 4) | l.nibble, ...d.bytes, ...l.bytes]), o.value);
    prev = o.number;
  }
  return concat(...parts);
}

/** Parses options from b[pos..]; returns them and where the payload starts (after 0xFF) or b.length. */
export function decodeOptions(b: Uint8Array, pos: number): { options: CoapOption[]; payload: Uint8Array } {
  const options: CoapOption[] = [];
  let num = 0;
  let p = pos;
  const readExt = (nibble: number): number => {
    if (nibble < 13) return nibble;
    if (nibble === 13) {
      if (p + 1 > b.length) fail('malformed', 'CoAP: truncated option');
      return (b[p++] as number) + 13;
    }
    if (nibble === 14) {
      if (p + 2 > b.length) fail('malformed', 'CoAP: truncated option');
      const v = ((b[p] as number) << 8) + (b[p + 1] as number) + 269;
      p += 2;
      return v;
    }
    return fail('malformed', 'CoAP: reserved option nibble 15');
  };
  while (p < b.length) {
    const h = b[p++] as number;
    if (h === 0xff) {
      if (p === b.length) fail('malformed', 'CoAP: payload marker without payload');
      return { options, payload: b.slice(p) };
    }
    num += readExt(h >> 4);
    const len = readExt(h & 15);
    if (p + len > b.length) fail('malformed', 'CoAP: option value beyond the message');
    options.push({ number: num, value: b.slice(p, p + len) });
    p += len;
  }
  return { options, payload: new Uint8Array(0) };
}

export function encodeMessage(m: CoapMessage): Uint8Array {
  if (m.token.length > 8) fail('invalid-argument', 'CoAP token longer than 8 bytes');
  const hdr = new Uint8Array([
    0x40 | ((m.type & 3) << 4) | m.token.length,
    m.code,
    (m.messageId >> 8) & 0xff,
    m.messageId & 0xff,
  ]);
  const payload = m.payload.length > 0 ? concat(new Uint8Array([0xff]), m.payload) : new Uint8Array(0);
  return concat(hdr, m.token, encodeOptions(m.options), payload);
}

export function decodeMessage(b: Uint8Array): CoapMessage {
  if (b.length < 4) fail('malformed', 'CoAP: message shorter than its header');
  const b0 = b[0] as number;
  if (b0 >> 6 !== 1) fail('malformed', 'CoAP: version is not 1');
  const tkl = b0 & 15;
  if (tkl > 8) fail('malformed', 'CoAP: token length > 8');
  if (4 + tkl > b.length) fail('malformed', 'CoAP: truncated token');
  const c = b[1] as number;
  if (c === 0 && b.length !== 4) fail('malformed', 'CoAP: empty message with content');
  const { options, payload } = decodeOptions(b, 4 + tkl);
  return {
    type: (b0 >> 4) & 3,
    code: c,
    messageId: ((b[2] as number) << 8) | (b[3] as number),
    token: b.slice(4, 4 + tkl),
    options,
    payload,
  };
}

// ------------------------------------------------------------------ Block options (RFC 7959)

export interface Block {
  num: number;
  more: boolean;
  szx: number; // block size 2^(szx+4), 0..6
}

export function encodeBlock(b: Block): Uint8Array {
  if (b.szx < 0 || b.szx > 6 || b.num < 0 || b.num >= 1 << 20) fail('invalid-argument', 'bad block');
  return uintOption(b.num * 16 + (b.more ? 8 : 0) + b.szx);
}

export function decodeBlock(o: CoapOption): Block {
  if (o.value.length > 3) fail('malformed', 'Block option longer than 3 bytes');
  const v = optionUint(o);
  const szx = v & 7;
  if (szx === 7) fail('malformed', 'Block option with reserved size 7');
  return { num: Math.floor(v / 16), more: (v & 8) !== 0, szx };
}

export function blockSize(szx: number): number {
  return 1 << (szx + 4);
}

// ------------------------------------------------------------------ helpers for requests

/** Uri-Path options of "/a/b" (empty segments skipped, as the CLI does) and Uri-Query options of "k=v&k2". */
export function pathOptions(path: string, query?: string): CoapOption[] {
  const out: CoapOption[] = [];
  for (const seg of path.split('/')) if (seg.length > 0) out.push({ number: OPT_URI_PATH, value: utf8(seg) });
  if (query !== undefined)
    for (const q of query.split('&')) if (q.length > 0) out.push({ number: OPT_URI_QUERY, value: utf8(q) });
  for (const o of out) if (o.value.length > 255) fail('invalid-argument', 'a path segment or query of more than 255 bytes');
  return out;
}

export function optionText(o: CoapOption): string {
  return fromUtf8(o.value);
}
