/**
 * The bulk text form of rows that full copy streams into LOAD DATA: one line per row, values in
 * the spec's column order, tab between fields, newline after each row, NULL as \N; backslash,
 * tab and newline escaped with a backslash (a NUL byte needs no escape: LOAD DATA reads it as
 * data); bytes (wire 'hex') as hex digits that the LOAD DATA statement turns back with UNHEX.
 * The MySQL source builds these lines in SQL (src/source/mysql/tsv.ts). Measured against this
 * form: quoting text (OPTIONALLY ENCLOSED BY, no escapes) costs the source less but the shard
 * servers' LOAD DATA more, a net loss.
 */

/** The FIELDS and LINES clauses of a LOAD DATA statement that reads this form. */
export const LOAD_DATA_FORMAT = "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'";

/**
 * Lines gathered into blocks of whole lines, each becoming one packet of a LOAD DATA stream.
 * Each line is copied on arrival, so the driver's row objects die young instead of being kept
 * (and promoted by the garbage collector) until the block is written. Blocks start at
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

  add(line: Buffer): void {
    if (this.used + line.length > this.block.length) {
      const next = Math.min(this.blockBytes, Math.max(this.firstBlockBytes, this.block.length * 2));
      this.seal();
      this.block = Buffer.allocUnsafe(Math.max(next, line.length));
    }
    line.copy(this.block, this.used);
    this.used += line.length;
    this.bytes += line.length;
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
