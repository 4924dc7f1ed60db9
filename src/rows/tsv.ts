import { ValueTooLargeError } from './types.js';

/**
 * The bulk text form of rows that full copy streams into LOAD DATA: one line per row, values in
 * the spec's column order, tab between fields, newline after each row, NULL as \N; backslash,
 * tab and newline escaped with a backslash (a NUL byte needs no escape: LOAD DATA reads it as
 * data); bytes (wire 'hex') as hex digits that the LOAD DATA statement turns back with UNHEX.
 * The MySQL source sends each row's columns in this text (src/source/mysql/tsv.ts) and
 * LineBlocks.addRow joins and escapes them. Measured against this form: quoting text (OPTIONALLY ENCLOSED BY, no escapes) costs the source less but the shard
 * servers' LOAD DATA more, a net loss.
 */

/** The FIELDS and LINES clauses of a LOAD DATA statement that reads this form. */
export const LOAD_DATA_FORMAT = "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'";

/**
 * Lines gathered into blocks of whole lines for a LOAD DATA stream (src/target/writer.ts joins
 * small ones into bigger packets). Each line is copied out of the driver's packet on arrival, so
 * the packets die young instead of being kept until the block is written. Blocks start at
 * `firstBlockBytes` (the caller's guess of a shard's share of a chunk; 8 KB without one) and
 * double up to `blockBytes`: with 1,024 shards a shard gets a few dozen lines of a chunk, and a
 * full-size first block per shard cost most of the copy's client CPU (1,024 x 256 KB a chunk).
 */
export class LineBlocks {
  readonly blocks: Buffer[] = [];
  lines = 0;
  bytes = 0;
  private block = Buffer.alloc(0);
  private used = 0;
  private readonly firstBlockBytes: number;

  constructor(
    private readonly blockBytes = 256 * 1024,
    firstBlockBytes = 8 * 1024,
  ) {
    this.firstBlockBytes = Math.min(blockBytes, firstBlockBytes);
  }

  /** Adds a whole line (copied). */
  add(line: Buffer): void {
    this.reserve(line.length);
    line.copy(this.block, this.used);
    this.commit(this.used + line.length);
  }

  /**
   * Adds the line of one row of a text-protocol result: `source[at, end)` holds its columns in
   * the spec's order, each a length-encoded string or 0xFB for NULL. Columns with `escaped[i]`
   * true are text as it is (NULL as 0xFB): their backslashes, tabs and newlines are escaped and
   * their NULLs written \N here. The others come in their final form (\N for NULL included): a
   * NULL among them is a value the server could not build, and throws ValueTooLargeError.
   *
   * The length bytes before a column take the place of the tab before it in the line, so runs
   * of columns that need nothing are copied in one piece and their length bytes overwritten by
   * tabs; only NULL text, text to escape or a long value (>= 251 bytes) ends a run. (The source server
   * escaping every text with three REPLACEs and joining the line with CONCAT_WS cost it a
   * third more CPU than sending the columns.)
   */
  addRow(source: Buffer, at: number, end: number, escaped: readonly boolean[]): void {
    // At most every byte escaped and every NULL (1 byte) written as \N (2), plus the newline.
    this.reserve(2 * (end - at) + escaped.length + 1);
    const out = this.block;
    let o = this.used;
    let p = at;
    let runFrom = -1; // where in `source` the pending run starts; -1 for none
    let runTo = 0; // ... and where it ends
    let runAt = 0; // where in `out` it goes
    let tabs = 0; // separators in the run, at tabAt[0, tabs)
    if (tabPositions.length < escaped.length) tabPositions = new Int32Array(escaped.length);
    const tabAt = tabPositions;
    for (let i = 0; i < escaped.length; i++) {
      if (p >= end) throw new RangeError(`a row has ${i} columns, ${escaped.length} expected`);
      const first = source[p]!;
      if (first < 0xfb && p + 1 + first <= end && !(escaped[i] && needsEscape(source, p + 1, p + 1 + first))) {
        if (runFrom < 0) {
          if (i > 0) out[o++] = TAB;
          runFrom = p + 1;
          runAt = o;
        } else tabAt[tabs++] = o++;
        o += first;
        p += 1 + first;
        runTo = p;
        continue;
      }
      if (runFrom >= 0) {
        source.copy(out, runAt, runFrom, runTo);
        for (let k = 0; k < tabs; k++) out[tabAt[k]!] = TAB;
        runFrom = -1;
        tabs = 0;
      }
      if (i > 0) out[o++] = TAB;
      if (first === 0xfb) {
        // A column in its final form has its NULL as \N already: NULL here is a value the server could not give.
        if (!escaped[i]) throw new ValueTooLargeError(`column ${i + 1} of a row: ${NOT_GIVEN}`);
        out[o++] = BACKSLASH;
        out[o++] = 0x4e; // N
        p += 1;
        continue;
      }
      const { from, to } = columnBounds(source, p);
      if (to > end) throw new RangeError(`a row's column ${i} runs past the row's end`);
      o = escaped[i] ? writeEscaped(source, from, to, out, o) : o + source.copy(out, o, from, to);
      p = to;
    }
    if (p !== end) throw new RangeError(`a row has more than ${escaped.length} columns`);
    if (runFrom >= 0) {
      source.copy(out, runAt, runFrom, runTo);
      for (let k = 0; k < tabs; k++) out[tabAt[k]!] = TAB;
    }
    out[o++] = NEWLINE;
    this.commit(o);
  }

  /** Makes room for a line of up to `bytes` bytes in the current block. */
  private reserve(bytes: number): void {
    if (this.used + bytes <= this.block.length) return;
    const next = Math.min(this.blockBytes, Math.max(this.firstBlockBytes, this.block.length * 2));
    this.seal();
    this.block = Buffer.allocUnsafe(Math.max(next, bytes));
  }

  /** The line just written into the block ends at `used`. */
  private commit(used: number): void {
    this.bytes += used - this.used;
    this.used = used;
    this.lines++;
  }

  /** The blocks, the last one cut to its lines. */
  done(): Buffer[] {
    this.seal();
    return this.blocks;
  }

  private seal(): void {
    // A block mostly empty is copied to its size: lines may wait in a batch (src/copy/batcher.ts)
    // for a while, and a subarray would hold the whole allocation (most of it, with many shards).
    if (this.used > 0) this.blocks.push(this.used < (this.block.length * 3) / 4 ? Buffer.from(this.block.subarray(0, this.used)) : this.block.subarray(0, this.used));
    this.block = Buffer.alloc(0);
    this.used = 0;
  }
}

/** HEX() of bytes over half of max_allowed_packet, for one: the server makes it NULL with a warning. */
const NOT_GIVEN = 'the source server gave NULL for a value it could not build within its max_allowed_packet';

/** Where addRow's current run has its tabs: scratch shared by all (addRow runs start to end without yielding). */
let tabPositions = new Int32Array(64);

const TAB = 0x09;
const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;

function needsEscape(bytes: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const b = bytes[i]!;
    if (b === BACKSLASH || b === TAB || b === NEWLINE) return true;
  }
  return false;
}

/** Writes bytes[from, to) into out at o with backslash, tab and newline escaped; returns the end. */
function writeEscaped(bytes: Buffer, from: number, to: number, out: Buffer, o: number): number {
  for (let i = from; i < to; i++) {
    const b = bytes[i]!;
    if (b === BACKSLASH || b === TAB || b === NEWLINE) {
      out[o++] = BACKSLASH;
      out[o++] = b === TAB ? 0x74 : b === NEWLINE ? 0x6e : BACKSLASH;
    } else out[o++] = b;
  }
  return o;
}

/** The bytes of the length-encoded string at `at` (not NULL). */
function columnBounds(bytes: Buffer, at: number): { from: number; to: number } {
  const first = bytes[at]!;
  if (first < 0xfb) return { from: at + 1, to: at + 1 + first };
  if (first === 0xfc) return { from: at + 3, to: at + 3 + bytes.readUInt16LE(at + 1) };
  if (first === 0xfd) return { from: at + 4, to: at + 4 + bytes.readUIntLE(at + 1, 3) };
  if (first === 0xfe) return { from: at + 9, to: at + 9 + Number(bytes.readBigUInt64LE(at + 1)) };
  throw new RangeError(`0x${first.toString(16)} is not the start of a length-encoded string`);
}
