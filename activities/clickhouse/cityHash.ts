/**
 * CityHash128 as ClickHouse uses it for its compressed-block checksums: Google's CityHash v1.0.2
 * (ClickHouse keeps that old version; later CityHash releases hash differently). Only used to
 * frame small blocks the worker writes itself, so plain BigInt arithmetic is fast enough.
 */

const M64 = (1n << 64n) - 1n;
const K0 = 0xc3a5c85c97cb3127n;
const K1 = 0xb492b66fbe98f273n;
const K2 = 0x9ae16a3b2f90404fn;
const K3 = 0xc949d7c7509e6557n;
const KMUL = 0x9ddfea08eb382d69n;

const mul = (a: bigint, b: bigint) => (a * b) & M64;
const add = (...xs: bigint[]) => xs.reduce((s, x) => s + x, 0n) & M64;
const rotate = (v: bigint, shift: number) => (shift === 0 ? v : ((v >> BigInt(shift)) | (v << BigInt(64 - shift))) & M64);
const shiftMix = (v: bigint) => v ^ (v >> 47n);

function hashLen16(u: bigint, v: bigint): bigint {
  let a = mul(u ^ v, KMUL);
  a ^= a >> 47n;
  let b = mul(v ^ a, KMUL);
  b ^= b >> 47n;
  return mul(b, KMUL);
}

function hashLen0to16(s: Buffer, at: number, len: number): bigint {
  if (len > 8) {
    const a = s.readBigUInt64LE(at);
    const b = s.readBigUInt64LE(at + len - 8);
    // RotateByAtLeast1: len is 9..16 here, never 0.
    return hashLen16(a, rotate(add(b, BigInt(len)), len)) ^ b;
  }
  if (len >= 4) {
    const a = BigInt(s.readUInt32LE(at));
    return hashLen16(add(BigInt(len), a << 3n), BigInt(s.readUInt32LE(at + len - 4)));
  }
  if (len > 0) {
    const a = s[at]!;
    const b = s[at + (len >> 1)]!;
    const c = s[at + len - 1]!;
    const y = BigInt((a + (b << 8)) >>> 0);
    const z = BigInt((len + (c << 2)) >>> 0);
    return mul(shiftMix(mul(y, K2) ^ mul(z, K3)), K2);
  }
  return K2;
}

function weakHashLen32WithSeeds(s: Buffer, at: number, a: bigint, b: bigint): [bigint, bigint] {
  const w = s.readBigUInt64LE(at);
  const x = s.readBigUInt64LE(at + 8);
  const y = s.readBigUInt64LE(at + 16);
  const z = s.readBigUInt64LE(at + 24);
  a = add(a, w);
  b = rotate(add(b, a, z), 21);
  const c = a;
  a = add(a, x, y);
  b = add(b, rotate(a, 44));
  return [add(a, z), add(b, c)];
}

function cityMurmur(s: Buffer, at: number, len: number, seedLow: bigint, seedHigh: bigint): [bigint, bigint] {
  let a = seedLow;
  let b = seedHigh;
  let c: bigint;
  let d: bigint;
  let l = len - 16;
  if (l <= 0) {
    a = mul(shiftMix(mul(a, K1)), K1);
    c = add(mul(b, K1), hashLen0to16(s, at, len));
    d = shiftMix(add(a, len >= 8 ? s.readBigUInt64LE(at) : c));
  } else {
    c = hashLen16(add(s.readBigUInt64LE(at + len - 8), K1), a);
    d = hashLen16(add(b, BigInt(len)), add(c, s.readBigUInt64LE(at + len - 16)));
    a = add(a, d);
    let p = at;
    do {
      a ^= mul(shiftMix(mul(s.readBigUInt64LE(p), K1)), K1);
      a = mul(a, K1);
      b ^= a;
      c ^= mul(shiftMix(mul(s.readBigUInt64LE(p + 8), K1)), K1);
      c = mul(c, K1);
      d ^= c;
      p += 16;
      l -= 16;
    } while (l > 0);
  }
  a = hashLen16(a, c);
  b = hashLen16(d, b);
  return [a ^ b, hashLen16(b, a)];
}

function cityHash128WithSeed(s: Buffer, at: number, len: number, seedLow: bigint, seedHigh: bigint): [bigint, bigint] {
  if (len < 128) return cityMurmur(s, at, len, seedLow, seedHigh);
  let x = seedLow;
  let y = seedHigh;
  let z = mul(BigInt(len), K1);
  const v: [bigint, bigint] = [0n, 0n];
  const w: [bigint, bigint] = [0n, 0n];
  v[0] = add(mul(rotate(y ^ K1, 49), K1), s.readBigUInt64LE(at));
  v[1] = add(mul(rotate(v[0], 42), K1), s.readBigUInt64LE(at + 8));
  w[0] = add(mul(rotate(add(y, z), 35), K1), x);
  w[1] = mul(rotate(add(x, s.readBigUInt64LE(at + 88)), 53), K1);
  let p = at;
  const round = () => {
    x = mul(rotate(add(x, y, v[0], s.readBigUInt64LE(p + 16)), 37), K1);
    y = mul(rotate(add(y, v[1], s.readBigUInt64LE(p + 48)), 42), K1);
    x ^= w[1];
    y ^= v[0];
    z = rotate(z ^ w[0], 33);
    const nv = weakHashLen32WithSeeds(s, p, mul(v[1], K1), add(x, w[0]));
    const nw = weakHashLen32WithSeeds(s, p + 32, add(z, w[1]), y);
    [v[0], v[1]] = nv;
    [w[0], w[1]] = nw;
    [z, x] = [x, z];
    p += 64;
  };
  do {
    round();
    round();
    len -= 128;
  } while (len >= 128);
  y = add(y, mul(rotate(w[0], 37), K0), z);
  x = add(x, mul(rotate(add(v[0], z), 49), K0));
  for (let tailDone = 0; tailDone < len; ) {
    tailDone += 32;
    y = add(mul(rotate((y - x) & M64, 42), K0), v[1]);
    w[0] = add(w[0], s.readBigUInt64LE(p + len - tailDone + 16));
    x = add(mul(rotate(x, 49), K0), w[0]);
    w[0] = add(w[0], v[0]);
    const nv = weakHashLen32WithSeeds(s, p + len - tailDone, v[0], v[1]);
    [v[0], v[1]] = nv;
  }
  x = hashLen16(x, v[0]);
  y = hashLen16(y, w[0]);
  return [add(hashLen16(add(x, v[1]), w[1]), y), hashLen16(add(x, w[1]), add(y, v[1]))];
}

/** CityHash128 v1.0.2 of `data`: [low64, high64]. */
export function cityHash128(data: Buffer): [bigint, bigint] {
  const len = data.length;
  if (len >= 16) {
    return cityHash128WithSeed(data, 16, len - 16, data.readBigUInt64LE(0) ^ K3, data.readBigUInt64LE(8));
  }
  if (len >= 8) {
    return cityHash128WithSeed(data, 0, 0, data.readBigUInt64LE(0) ^ mul(BigInt(len), K0), data.readBigUInt64LE(len - 8) ^ K1);
  }
  return cityHash128WithSeed(data, 0, len, K0, K1);
}
