/**
 * A SQL Server log sequence number: binary(10) = VLF sequence (4 bytes), log block (4), slot (2).
 * LSNs order as unsigned big-endian bytes; the canonical text is 20 lower-case hex chars, so
 * string order equals LSN order. Debezium writes the same value as `0000002b:00000c48:0003`.
 * The same 10-byte shape is used for __$seqval.
 */
export class Lsn {
  static readonly BYTES = 10;
  /** 0x00…00: what sys.fn_cdc_get_min_lsn returns for a missing capture instance or missing rights. */
  static readonly ZERO = new Lsn(Buffer.alloc(Lsn.BYTES));

  private readonly bytes: Buffer;

  private constructor(bytes: Buffer) {
    this.bytes = bytes;
  }

  /** From tedious' Buffer(10), 20 hex chars (optionally 0x-prefixed), or Debezium's `vlf:block:slot`. */
  static parse(input: Buffer | Uint8Array | string): Lsn {
    if (typeof input !== 'string') {
      if (input.length !== Lsn.BYTES) throw new Error(`an LSN has ${Lsn.BYTES} bytes, got ${input.length}`);
      return new Lsn(Buffer.from(input));
    }
    const text = input.trim();
    const debezium = /^([0-9a-fA-F]{8}):([0-9a-fA-F]{8}):([0-9a-fA-F]{4})$/.exec(text);
    if (debezium) return new Lsn(Buffer.from(debezium[1]! + debezium[2]! + debezium[3]!, 'hex'));
    const hex = /^(?:0x)?([0-9a-fA-F]{20})$/.exec(text);
    if (hex) return new Lsn(Buffer.from(hex[1]!, 'hex'));
    throw new Error(`not an LSN: "${text.slice(0, 40)}" (expected 20 hex digits or vlf:block:slot like 0000002b:00000c48:0003)`);
  }

  /** A copy of the 10 bytes, to bind as sql.Binary. */
  toBuffer(): Buffer {
    return Buffer.from(this.bytes);
  }

  /** 20 lower-case hex chars: the form stored in the control store. */
  toString(): string {
    return this.bytes.toString('hex');
  }

  toJSON(): string {
    return this.toString();
  }

  /** Debezium's `0000002b:00000c48:0003`. */
  toDebezium(): string {
    const h = this.toString();
    return `${h.slice(0, 8)}:${h.slice(8, 16)}:${h.slice(16)}`;
  }

  compare(other: Lsn): -1 | 0 | 1 {
    return Buffer.compare(this.bytes, other.bytes) as -1 | 0 | 1;
  }

  equals(other: Lsn): boolean {
    return this.compare(other) === 0;
  }

  isZero(): boolean {
    return this.bytes.every((b) => b === 0);
  }

  /** The next LSN, as sys.fn_cdc_increment_lsn gives: the 80-bit value plus one. */
  increment(): Lsn {
    const next = Buffer.from(this.bytes);
    for (let i = next.length - 1; i >= 0; i--) {
      if (next[i]! < 0xff) {
        next[i] = next[i]! + 1;
        return new Lsn(next);
      }
      next[i] = 0;
    }
    throw new Error('cannot increment the largest LSN ffffffffffffffffffff');
  }

  /** The previous LSN, as sys.fn_cdc_decrement_lsn gives: the 80-bit value minus one. */
  decrement(): Lsn {
    const previous = Buffer.from(this.bytes);
    for (let i = previous.length - 1; i >= 0; i--) {
      if (previous[i]! > 0) {
        previous[i] = previous[i]! - 1;
        return new Lsn(previous);
      }
      previous[i] = 0xff;
    }
    throw new Error('cannot decrement the LSN 00000000000000000000');
  }

  static max(a: Lsn, b: Lsn): Lsn {
    return a.compare(b) >= 0 ? a : b;
  }
}
