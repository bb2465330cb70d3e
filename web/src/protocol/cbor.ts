/**
 * cbor.ts - a small, strict CBOR codec (RFC 8949) for exactly what Cloister
 * speaks: EDHOC and COSE structures, OSCORE's AAD, and the core's payloads.
 *
 * Why our own and not a general library: EDHOC signs and MACs encoded CBOR
 * and OSCORE feeds it into AEAD additional data, so one value must have one
 * encoding and a decoder must refuse every other one, as the C library does
 * (lib/cbor.c). General-purpose codecs accept non-shortest heads, indefinite
 * lengths and duplicate keys by design. The subset is small: ~400 lines.
 *
 * Encoder: deterministic (RFC 8949 section 4.2.1): shortest heads, definite
 * lengths, map keys sorted by their encoded bytes, floats in preferred
 * serialization (shortest exact width; NaN is f9 7e 00). An integral JS
 * number is an integer; others are floats; bigint for integers beyond 2^53.
 *
 * Decoder: refuses non-shortest heads, indefinite lengths, reserved
 * additional information, two-byte simple values below 32, truncation,
 * lengths beyond the input, invalid UTF-8, duplicate map keys, nesting deeper
 * than 32, and trailing bytes (decode); like the C decoder, float widths are
 * read as values. Maps decode to Map; `toPlain` turns text-keyed maps into
 * objects for application payloads.
 */
import { bytesEqual, fromUtf8, toHex, utf8 } from './bytes.js';
import { fail } from './errors.js';

export class CborTag {
  constructor(
    readonly tag: number | bigint,
    readonly value: CborValue,
  ) {}
}

/** A simple value other than false, true, null and undefined. */
export class CborSimple {
  constructor(readonly value: number) {}
}

export type CborValue =
  | number
  | bigint
  | string
  | boolean
  | null
  | undefined
  | Uint8Array
  | CborValue[]
  | Map<CborValue, CborValue>
  | CborTag
  | CborSimple;

/** What `encode` accepts: CborValue plus plain objects (text keys) and read-only arrays. */
export type CborInput =
  | CborValue
  | readonly CborInput[]
  | ReadonlyMap<CborInput, CborInput>
  | { readonly [key: string]: CborInput };

/** Application values after `toPlain`: text-keyed maps become objects. */
export type PlainValue =
  | number
  | bigint
  | string
  | boolean
  | null
  | undefined
  | Uint8Array
  | PlainValue[]
  | { [key: string]: PlainValue }
  | Map<CborValue, CborValue>
  | CborTag
  | CborSimple;

export const MAJOR_UINT = 0;
export const MAJOR_NINT = 1;
export const MAJOR_BSTR = 2;
export const MAJOR_TSTR = 3;
export const MAJOR_ARRAY = 4;
export const MAJOR_MAP = 5;
export const MAJOR_TAG = 6;
export const MAJOR_SIMPLE = 7;

const MAX_DEPTH = 32;
const TWO_64 = 1n << 64n;

// ------------------------------------------------------------------ encoder

class Writer {
  private buf = new Uint8Array(256);
  private len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.len));
    this.buf = nb;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.len++] = b;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** The shortest head for (major, argument). */
export function head(major: number, arg: number | bigint): Uint8Array {
  const w = new Writer();
  writeHead(w, major, arg);
  return w.result();
}

function writeHead(w: Writer, major: number, arg: number | bigint): void {
  const mt = major << 5;
  if (typeof arg === 'number') {
    if (!Number.isSafeInteger(arg) || arg < 0) fail('invalid-argument', 'CBOR argument out of range');
    if (arg < 24) return w.byte(mt | arg);
    if (arg < 0x100) {
      w.byte(mt | 24);
      return w.byte(arg);
    }
    if (arg < 0x10000) {
      w.byte(mt | 25);
      w.byte(arg >> 8);
      return w.byte(arg & 0xff);
    }
    if (arg < 0x100000000) {
      w.byte(mt | 26);
      w.byte((arg >>> 24) & 0xff);
      w.byte((arg >>> 16) & 0xff);
      w.byte((arg >>> 8) & 0xff);
      return w.byte(arg & 0xff);
    }
    return writeHead(w, major, BigInt(arg));
  }
  if (arg < 0n || arg >= TWO_64) fail('invalid-argument', 'CBOR argument out of range');
  if (arg < 0x100000000n) return writeHead(w, major, Number(arg));
  w.byte(mt | 27);
  for (let i = 7; i >= 0; i--) w.byte(Number((arg >> BigInt(8 * i)) & 0xffn));
}

/** binary16 bits for v when v is exactly representable, else null. */
function toHalf(v: number): number | null {
  if (v === Infinity) return 0x7c00;
  if (v === -Infinity) return 0xfc00;
  if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
  if (Math.fround(v) !== v) return null;
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, v);
  const bits = dv.getUint32(0);
  const sign = (bits >>> 31) << 15;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0) return null; // binary32 subnormal: far below binary16
  const e = exp - 127;
  if (e >= -14 && e <= 15) {
    if ((mant & 0x1fff) !== 0) return null;
    return sign | ((e + 15) << 10) | (mant >>> 13);
  }
  if (e >= -24 && e < -14) {
    const full = mant | 0x800000;
    const sh = -e - 1;
    if ((full & ((1 << sh) - 1)) !== 0) return null;
    return sign | (full >>> sh);
  }
  return null;
}

function writeFloat(w: Writer, v: number): void {
  if (Number.isNaN(v)) {
    w.byte(0xf9);
    w.byte(0x7e);
    return w.byte(0x00);
  }
  const h = toHalf(v);
  if (h !== null) {
    w.byte(0xf9);
    w.byte(h >> 8);
    return w.byte(h & 0xff);
  }
  if (Math.fround(v) === v) {
    const b = new Uint8Array(5);
    b[0] = 0xfa;
    new DataView(b.buffer).setFloat32(1, v);
    return w.bytes(b);
  }
  const b = new Uint8Array(9);
  b[0] = 0xfb;
  new DataView(b.buffer).setFloat64(1, v);
  w.bytes(b);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

function isPlainObject(v: object): v is { readonly [key: string]: CborInput } {
  const p: unknown = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function writeMap(w: Writer, entries: [CborInput, CborInput][], depth: number): void {
  const enc: [Uint8Array, CborInput][] = entries.map(([k, v]) => [encodeDepth(k, depth + 1), v]);
  enc.sort((a, b) => compareBytes(a[0], b[0]));
  for (let i = 1; i < enc.length; i++)
    if (bytesEqual(enc[i - 1]![0], enc[i]![0])) fail('invalid-argument', 'duplicate CBOR map key');
  writeHead(w, MAJOR_MAP, enc.length);
  for (const [k, v] of enc) {
    w.bytes(k);
    writeItem(w, v, depth + 1);
  }
}

function writeItem(w: Writer, v: CborInput, depth: number): void {
  if (depth > MAX_DEPTH) fail('limit', 'CBOR nesting too deep');
  switch (typeof v) {
    case 'number':
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
        return v >= 0 ? writeHead(w, MAJOR_UINT, v) : writeHead(w, MAJOR_NINT, -1 - v);
      }
      return writeFloat(w, v);
    case 'bigint':
      return v >= 0n ? writeHead(w, MAJOR_UINT, v) : writeHead(w, MAJOR_NINT, -1n - v);
    case 'string': {
      const b = utf8(v);
      writeHead(w, MAJOR_TSTR, b.length);
      return w.bytes(b);
    }
    case 'boolean':
      return w.byte(v ? 0xf5 : 0xf4);
    case 'undefined':
      return w.byte(0xf7);
    case 'object':
      break;
    default:
      return fail('invalid-argument', `cannot encode a ${typeof v} as CBOR`);
  }
  if (v === null) return w.byte(0xf6);
  if (v instanceof Uint8Array) {
    writeHead(w, MAJOR_BSTR, v.length);
    return w.bytes(v);
  }
  if (Array.isArray(v)) {
    const a: readonly CborInput[] = v;
    writeHead(w, MAJOR_ARRAY, a.length);
    for (const x of a) writeItem(w, x, depth + 1);
    return;
  }
  if (v instanceof Map) return writeMap(w, [...(v as ReadonlyMap<CborInput, CborInput>).entries()], depth);
  if (v instanceof CborTag) {
    writeHead(w, MAJOR_TAG, v.tag);
    return writeItem(w, v.value, depth + 1);
  }
  if (v instanceof CborSimple) {
    if (!Number.isInteger(v.value) || v.value < 0 || v.value > 255 || (v.value >= 20 && v.value < 32))
      fail('invalid-argument', 'bad CBOR simple value');
    if (v.value < 24) return w.byte(0xe0 | v.value);
    w.byte(0xf8);
    return w.byte(v.value);
  }
  if (isPlainObject(v)) {
    // undefined-valued properties are skipped (like JSON.stringify)
    const entries: [CborInput, CborInput][] = [];
    for (const k of Object.keys(v)) {
      const x = v[k];
      if (x !== undefined) entries.push([k, x]);
    }
    return writeMap(w, entries, depth);
  }
  fail('invalid-argument', 'cannot encode this object as CBOR');
}

function encodeDepth(v: CborInput, depth: number): Uint8Array {
  const w = new Writer();
  writeItem(w, v, depth);
  return w.result();
}

/** One data item in deterministic encoding. */
export function encode(v: CborInput): Uint8Array {
  return encodeDepth(v, 0);
}

/** A CBOR sequence (RFC 8742): the items' encodings one after the other. */
export function encodeSequence(items: readonly CborInput[]): Uint8Array {
  const w = new Writer();
  for (const v of items) writeItem(w, v, 0);
  return w.result();
}

/** bstr head + bytes (wrapping an already-encoded sequence, e.g. context_2). */
export function bstr(b: Uint8Array): Uint8Array {
  const w = new Writer();
  writeHead(w, MAJOR_BSTR, b.length);
  w.bytes(b);
  return w.result();
}

// ------------------------------------------------------------------ decoder

interface Head {
  major: number;
  ai: number;
  arg: number | bigint;
  len: number;
}

function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

export class CborDecoder {
  private pos: number;
  private readonly dv: DataView;

  constructor(
    private readonly buf: Uint8Array,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get offset(): number {
    return this.pos;
  }

  atEnd(): boolean {
    return this.pos >= this.end;
  }

  /** The major type of the next item without consuming it. */
  peekMajor(): number {
    if (this.pos >= this.end) fail('malformed', 'CBOR: unexpected end of input');
    return (this.buf[this.pos] as number) >> 5;
  }

  private readHead(): Head {
    const p = this.pos;
    if (p >= this.end) fail('malformed', 'CBOR: unexpected end of input');
    const ib = this.buf[p] as number;
    const major = ib >> 5;
    const ai = ib & 0x1f;
    if (ai < 24) return { major, ai, arg: ai, len: 1 };
    if (ai === 31) {
      if (major >= MAJOR_BSTR && major <= MAJOR_MAP) fail('unsupported', 'CBOR: indefinite lengths are not accepted');
      fail('malformed', 'CBOR: unexpected break or reserved head');
    }
    if (ai > 27) fail('malformed', 'CBOR: reserved additional information');
    const n = 1 << (ai - 24);
    if (this.end - p - 1 < n) fail('malformed', 'CBOR: truncated head');
    let arg: number | bigint;
    if (n === 1) arg = this.buf[p + 1] as number;
    else if (n === 2) arg = this.dv.getUint16(p + 1);
    else if (n === 4) arg = this.dv.getUint32(p + 1);
    else {
      const big = this.dv.getBigUint64(p + 1);
      arg = big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    if (major === MAJOR_SIMPLE) {
      if (n === 1 && (arg as number) < 32) fail('malformed', 'CBOR: two-byte simple value below 32');
      return { major, ai, arg, len: 1 + n };
    }
    const v = typeof arg === 'bigint' ? arg : BigInt(arg);
    if ((n === 1 && v < 24n) || (n === 2 && v <= 0xffn) || (n === 4 && v <= 0xffffn) || (n === 8 && v <= 0xffffffffn))
      fail('malformed', 'CBOR: non-shortest head (not deterministic)');
    return { major, ai, arg, len: 1 + n };
  }

  private length(h: Head, minItemSize: number): number {
    const remaining = this.end - this.pos;
    if (typeof h.arg === 'bigint' || h.arg * minItemSize > remaining)
      fail('malformed', 'CBOR: length beyond the input');
    return h.arg;
  }

  /** Decodes the next whole item. */
  item(): CborValue {
    return this.itemAt(0);
  }

  /** Decodes the next item and returns its exact encoded bytes too. */
  itemRaw(): { value: CborValue; raw: Uint8Array } {
    const start = this.pos;
    const value = this.itemAt(0);
    return { value, raw: this.buf.subarray(start, this.pos) };
  }

  /** Skips the next item, returning its encoded bytes. */
  raw(): Uint8Array {
    return this.itemRaw().raw;
  }

  /** An integer item (major type 0 or 1, never a float) within the safe range. */
  int(what: string): number {
    const m = this.peekMajor();
    if (m !== MAJOR_UINT && m !== MAJOR_NINT) fail('malformed', `${what}: an integer is expected`);
    const v = this.item();
    if (typeof v !== 'number') fail('malformed', `${what}: integer out of range`);
    return v;
  }

  bytes(what: string): Uint8Array {
    if (this.peekMajor() !== MAJOR_BSTR) fail('malformed', `${what}: a byte string is expected`);
    return this.item() as Uint8Array;
  }

  text(what: string): string {
    if (this.peekMajor() !== MAJOR_TSTR) fail('malformed', `${what}: a text string is expected`);
    return this.item() as string;
  }

  private itemAt(depth: number): CborValue {
    if (depth > MAX_DEPTH) fail('limit', 'CBOR nesting too deep');
    const h = this.readHead();
    this.pos += h.len;
    switch (h.major) {
      case MAJOR_UINT:
        return h.arg;
      case MAJOR_NINT:
        if (typeof h.arg === 'bigint') return -1n - h.arg;
        return h.arg === Number.MAX_SAFE_INTEGER ? -1n - BigInt(h.arg) : -1 - h.arg;
      case MAJOR_BSTR: {
        const n = this.length(h, 1);
        const b = this.buf.slice(this.pos, this.pos + n);
        this.pos += n;
        return b;
      }
      case MAJOR_TSTR: {
        const n = this.length(h, 1);
        const s = fromUtf8(this.buf.subarray(this.pos, this.pos + n));
        this.pos += n;
        return s;
      }
      case MAJOR_ARRAY: {
        const n = this.length(h, 1);
        const a: CborValue[] = [];
        for (let i = 0; i < n; i++) a.push(this.itemAt(depth + 1));
        return a;
      }
      case MAJOR_MAP: {
        const n = this.length(h, 2);
        const m = new Map<CborValue, CborValue>();
        const seen = new Set<string>();
        for (let i = 0; i < n; i++) {
          const ks = this.pos;
          const k = this.itemAt(depth + 1);
          const kraw = toHex(this.buf.subarray(ks, this.pos));
          if (seen.has(kraw) || (typeof k !== 'object' && m.has(k))) fail('malformed', 'CBOR: duplicate map key');
          seen.add(kraw);
          m.set(k, this.itemAt(depth + 1));
        }
        return m;
      }
      case MAJOR_TAG:
        return new CborTag(h.arg, this.itemAt(depth + 1));
      default: {
        // major 7
        if (h.ai < 24) {
          if (h.ai === 20) return false;
          if (h.ai === 21) return true;
          if (h.ai === 22) return null;
          if (h.ai === 23) return undefined;
          return new CborSimple(h.ai);
        }
        if (h.ai === 24) return new CborSimple(h.arg as number);
        const at = this.pos - (h.len - 1);
        if (h.ai === 25) return halfToNumber(this.dv.getUint16(at));
        if (h.ai === 26) return this.dv.getFloat32(at);
        return this.dv.getFloat64(at);
      }
    }
  }
}

/** Exactly one item (no trailing bytes). */
export function decode(buf: Uint8Array): CborValue {
  const d = new CborDecoder(buf);
  const v = d.item();
  if (!d.atEnd()) fail('malformed', 'CBOR: trailing bytes after the item');
  return v;
}

/** A CBOR sequence: every item to the end. */
export function decodeSequence(buf: Uint8Array): CborValue[] {
  const d = new CborDecoder(buf);
  const out: CborValue[] = [];
  while (!d.atEnd()) out.push(d.item());
  return out;
}

/** Text-keyed maps become plain objects (recursively); other maps stay Maps. */
export function toPlain(v: CborValue): PlainValue {
  if (Array.isArray(v)) return v.map(toPlain);
  if (v instanceof Map) {
    for (const k of v.keys()) if (typeof k !== 'string') return v;
    const o: { [key: string]: PlainValue } = {};
    for (const [k, x] of v) {
      // defineProperty: a "__proto__" key stays data, never a prototype change
      Object.defineProperty(o, k as string, { value: toPlain(x), enumerable: true, writable: true, configurable: true });
    }
    return o;
  }
  return v;
}

// ---------------------------------------------------------- typed accessors

export function asMap(v: CborValue, what: string): Map<CborValue, CborValue> {
  if (!(v instanceof Map)) fail('malformed', `${what}: a map is expected`);
  return v;
}

export function asArray(v: CborValue, what: string): CborValue[] {
  if (!Array.isArray(v)) fail('malformed', `${what}: an array is expected`);
  return v;
}

export function asBytes(v: CborValue, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) fail('malformed', `${what}: a byte string is expected`);
  return v;
}

export function asText(v: CborValue, what: string): string {
  if (typeof v !== 'string') fail('malformed', `${what}: a text string is expected`);
  return v;
}

export function asInt(v: CborValue, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail('malformed', `${what}: an integer is expected`);
  return v;
}
