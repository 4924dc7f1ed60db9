import { keyText, type ShardKey } from '../shard/map.js';
import { murmur3, murmur3Bytes } from '../shard/hash.js';
import { FULL_BASIS_POINTS } from './percent.js';

/**
 * A member's gray bucket: MurmurHash3 x86_32 (seed 0) of the UTF-8 text `salt:memberId`, as
 * unsigned, mod 10,000. A member is inside a percentage when bucket < basis points, so raising a
 * percentage only ever adds members. This is the reference form; docs/shim-contract.md has vectors.
 */
export function bucketOf(salt: string, memberId: ShardKey): number {
  return murmur3(`${salt}:${keyText(memberId)}`) % FULL_BASIS_POINTS;
}

const POW10 = Array.from({ length: 16 }, (_, i) => 10 ** i);
const encoder = new TextEncoder();

/**
 * The same bucket as bucketOf, computed without allocating: the `salt:` bytes sit at the start of a
 * reused buffer and the member id's bytes are written after them. Used on the shim's decision path,
 * which must stay allocation-free (millions of decisions per second). One instance per salt; not
 * re-entrant, which is fine because JavaScript runs it synchronously.
 */
export class Bucketer {
  private bytes: Uint8Array;
  private readonly prefixLength: number;

  constructor(readonly salt: string) {
    const prefix = encoder.encode(`${salt}:`);
    this.prefixLength = prefix.length;
    this.bytes = new Uint8Array(prefix.length + 64);
    this.bytes.set(prefix);
  }

  bucket(memberId: ShardKey): number {
    let length: number;
    if (typeof memberId === 'number') length = this.writeInteger(memberId);
    else if (typeof memberId === 'string') length = this.writeString(memberId);
    else length = this.writeString(memberId.toString());
    return murmur3Bytes(this.bytes, 0, length) % FULL_BASIS_POINTS;
  }

  /** Decimal digits of a safe integer after the prefix, as keyText would print them. */
  private writeInteger(n: number): number {
    if (!Number.isSafeInteger(n)) keyText(n); // throws the shard map's message for unsafe numbers
    let length = this.prefixLength;
    let v = n;
    if (v < 0) {
      this.bytes[length++] = 0x2d; // '-'
      v = -v;
    }
    let digits = 1;
    while (digits < 16 && v >= POW10[digits]!) digits++;
    if (v <= 0x7fffffff) {
      // 32-bit integer division: much faster than Math.floor on doubles.
      for (let i = length + digits - 1; i >= length; i--) {
        const q = (v / 10) | 0;
        this.bytes[i] = 0x30 + (v - q * 10);
        v = q;
      }
    } else {
      for (let i = length + digits - 1; i >= length; i--) {
        this.bytes[i] = 0x30 + (v % 10);
        v = Math.floor(v / 10);
      }
    }
    return length + digits;
  }

  private writeString(s: string): number {
    const start = this.prefixLength;
    let ascii = true;
    for (let i = 0; i < s.length; i++) {
      if (s.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (!ascii) {
      const encoded = encoder.encode(s);
      this.ensure(start + encoded.length);
      this.bytes.set(encoded, start);
      return start + encoded.length;
    }
    this.ensure(start + s.length);
    for (let i = 0; i < s.length; i++) this.bytes[start + i] = s.charCodeAt(i);
    return start + s.length;
  }

  private ensure(size: number): void {
    if (size <= this.bytes.length) return;
    const bigger = new Uint8Array(size * 2);
    bigger.set(this.bytes.subarray(0, this.prefixLength));
    this.bytes = bigger;
  }
}
