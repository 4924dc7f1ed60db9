/**
 * The two hash functions of the shard contract, over the UTF-8 bytes of a key's text form.
 * Both take a string and work on its char codes directly when it is ASCII (the common case:
 * decimal ids), so routing allocates nothing on the hot path.
 */

const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

const encoder = new TextEncoder();

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** CRC-32 (IEEE 802.3), the value MySQL's CRC32() returns, as an unsigned 32-bit number. */
export function crc32(text: string): number {
  let crc = -1;
  if (isAscii(text)) {
    for (let i = 0; i < text.length; i++) crc = CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  } else {
    const bytes = encoder.encode(text);
    for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  }
  return (crc ^ -1) >>> 0;
}

/** Reused for non-ASCII strings, so hashing allocates only when a key outgrows it. */
let scratch = new Uint8Array(256);

/** MurmurHash3 x86_32 of a string's UTF-8 bytes, as an unsigned 32-bit number. */
export function murmur3(text: string, seed = 0): number {
  if (isAscii(text)) {
    if (text.length > scratch.length) scratch = new Uint8Array(text.length * 2);
    for (let i = 0; i < text.length; i++) scratch[i] = text.charCodeAt(i);
    return murmur3Bytes(scratch, seed, text.length);
  }
  // UTF-8 takes at most 3 bytes per UTF-16 unit.
  if (text.length * 3 > scratch.length) scratch = new Uint8Array(text.length * 3);
  const { written } = encoder.encodeInto(text, scratch);
  return murmur3Bytes(scratch, seed, written);
}

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/**
 * MurmurHash3 x86_32 of bytes[0..length), as an unsigned 32-bit number: the one implementation,
 * also used by the gray bucketer over its reused buffer.
 */
export function murmur3Bytes(bytes: Uint8Array, seed = 0, length = bytes.length): number {
  let h = seed >>> 0;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = length & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= bytes[blocks + 2]! << 16;
    if (tail >= 2) k ^= bytes[blocks + 1]! << 8;
    k ^= bytes[blocks]!;
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
