/** The CBOR codec: RFC 8949 Appendix A encodings, deterministic output, strict refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import './helpers.js';
import { fromHex, toHex } from '../src/protocol/bytes.js';
import { CborTag, type CborInput, decode, decodeSequence, encode, toPlain } from '../src/protocol/cbor.js';
import { ProtocolError } from '../src/protocol/errors.js';

const isCode = (code: string) => (e: unknown) => e instanceof ProtocolError && e.code === code;

test('RFC 8949 Appendix A: encodings of numbers, strings, containers (both ways)', () => {
  const cases: [CborInput, string][] = [
    [0, '00'], [1, '01'], [10, '0a'], [23, '17'], [24, '1818'], [25, '1819'], [100, '1864'], [1000, '1903e8'],
    [1000000, '1a000f4240'], [1000000000000, '1b000000e8d4a51000'], [18446744073709551615n, '1bffffffffffffffff'],
    [-1, '20'], [-10, '29'], [-100, '3863'], [-1000, '3903e7'], [-18446744073709551616n, '3bffffffffffffffff'],
    [0.5, 'f93800'], [-0, 'f98000'], [1.5, 'f93e00'], [65504.5, 'fa477fe080'], [100000.5, 'fa47c35040'], [3.4028234663852886e38, 'fa7f7fffff'],
    [1.0e300, 'fb7e37e43c8800759c'], [5.960464477539063e-8, 'f90001'], [0.00006103515625, 'f90400'], [-4.1, 'fbc010666666666666'],
    [Infinity, 'f97c00'], [NaN, 'f97e00'], [-Infinity, 'f9fc00'],
    [false, 'f4'], [true, 'f5'], [null, 'f6'], [undefined, 'f7'],
    [new Uint8Array(0), '40'], [fromHex('01020304'), '4401020304'], ['', '60'], ['a', '6161'], ['IETF', '6449455446'],
    ['"\\', '62225c'], ['\u00fc', '62c3bc'], ['\u6c34', '63e6b0b4'], ['\ud800\udd51', '64f0908591'],
    [[], '80'], [[1, 2, 3], '83010203'], [[1, [2, 3], [4, 5]], '8301820203820405'],
    [{}, 'a0'], [new Map([[1, 2], [3, 4]]), 'a201020304'], [{ a: 1, b: [2, 3] }, 'a26161016162820203'],
    [new CborTag(1, 1363896240), 'c11a514b67b0'],
  ];
  for (const [v, hex] of cases) {
    assert.equal(toHex(encode(v)), hex, `encode ${String(v)}`);
    const back = decode(fromHex(hex));
    if (typeof v === 'number' && Number.isNaN(v)) assert.ok(Number.isNaN(back as number));
    else if (v instanceof Map || (typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && !Array.isArray(v) && !(v instanceof CborTag)))
      assert.deepEqual(toPlain(back), v instanceof Map ? back : v);
    else assert.deepEqual(back, v, `decode ${hex}`);
  }
});

test('deterministic: map keys sorted by their encoding, duplicate keys refused on both sides', () => {
  assert.equal(toHex(encode({ b: 1, a: 2 })), 'a2616102616201');
  assert.equal(toHex(encode(new Map<CborInput, CborInput>([[-1, 0], [10, 0], ['z', 0], [1, 0]]))), 'a401000a002000617a00');
  assert.throws(() => encode(new Map<CborInput, CborInput>([[fromHex('01'), 0], [fromHex('01'), 1]])), isCode('invalid-argument'));
  assert.equal(decode(fromHex('f97bff')), 65504); // floats of any width are read as values
  assert.throws(() => decode(fromHex('a201000101')), isCode('malformed'));
  assert.throws(() => decode(fromHex('a2614101614102')), isCode('malformed'));
});

test('strict decoding: non-shortest heads, indefinite lengths, reserved values, truncation, trailing bytes, bad UTF-8, depth', () => {
  const malformed = [
    '1817', // 23 in two bytes
    '190017', '1a000000ff', '1b00000000ffffffff', '3817', '5801ff', '7801', // non-shortest heads
    'f818', // simple value < 32 in two bytes
    '1c', '1d', '1e', // reserved additional information
    'ff', // a break outside an indefinite item
    '19', '1a0000', '4201', '636162', '82', '8201', 'a101', // truncated
    '0000', // trailing item (decode wants exactly one)
    '62c328', // invalid UTF-8
  ];
  for (const h of malformed) assert.throws(() => decode(fromHex(h)), isCode('malformed'), h);
  for (const h of ['5f4101ff', '9f01ff', 'bf0101ff', '7f6161ff']) assert.throws(() => decode(fromHex(h)), isCode('unsupported'), h);
  assert.throws(() => decode(fromHex('9b00000000ffffffff')), isCode('malformed'), 'huge length');
  assert.throws(() => decode(fromHex('81'.repeat(40) + '00')), isCode('limit'), 'depth');
  assert.deepEqual(decodeSequence(fromHex('0102')), [1, 2]);
  assert.deepEqual(decodeSequence(new Uint8Array(0)), []);
});

test('toPlain: text-keyed maps become objects; __proto__ stays data', () => {
  const v = toPlain(decode(encode(new Map<CborInput, CborInput>([['__proto__', 1], ['x', [new Map<CborInput, CborInput>([['y', true]])]]]))));
  assert.equal(Object.getPrototypeOf(v), Object.prototype);
  assert.deepEqual(Object.keys(v as object), ['x', '__proto__']); // sorted: 61 78 before 69 5f ...
  assert.ok(toPlain(decode(fromHex('a10102'))) instanceof Map);
});
