import type { Pool } from 'mysql2/promise';

/**
 * Row packets of a text-protocol result, handed over as bytes before mysql2 parses them.
 *
 * The copy's line path reads every row of every table, and only to copy its columns' bytes into
 * a LOAD DATA line (LineBlocks.addRow). mysql2 would make an array, a Buffer view per column and
 * an event per row first: 0.5 s of membermig's CPU per 2M rows and a third of its garbage (a CPU
 * profile of the copy bench). This reads the same packets in place.
 *
 * mysql2 has no public hook for it: its Query command moves to the row state through
 * `this.row` after the column definitions (fieldsEOF), so a `row` set on the command object
 * takes every row packet; the end of the result goes back to Query's own `row`. That is checked
 * on each query, so a mysql2 that no longer works this way fails at once, not with wrong rows
 * (test/row-packets.test.ts runs it against a server).
 */

interface Packet {
  buffer: Buffer;
  offset: number;
  end: number;
  isEOF(): boolean;
}
type RowState = (this: QueryCommand, packet: Packet, connection: unknown) => RowState | null;
interface QueryCommand {
  row: RowState;
  on(event: 'error', listener: (e: Error) => void): QueryCommand;
  on(event: 'end', listener: () => void): QueryCommand;
}

/** Query's own row state (it ends the result), checked once: mysql2 must still read rows through `this.row`. */
function queryRowState(query: QueryCommand): RowState {
  const proto = Object.getPrototypeOf(query) as { row?: unknown; fieldsEOF?: unknown };
  if (typeof proto.row !== 'function' || !/\bthis\.row\b/.test(String(proto.fieldsEOF))) {
    throw new Error('mysql2 no longer reads rows through Query#row: src/mysql/row-packets.ts needs updating');
  }
  return proto.row as RowState;
}

/**
 * A row's bytes: `buffer` from `start` to `end` holds its columns, each a length-encoded string or NULL.
 * A promise returned pauses the result (no more packets are read from the socket) until it settles.
 */
export type RowBytes = (buffer: Buffer, start: number, end: number) => void | Promise<void>;

interface PausableConnection {
  pause(): void;
  resume(): void;
}

/**
 * Runs a query and hands each row's packet bytes to onRow as it arrives; rejects with onRow's
 * first error (the rest of the result is drained), or the query's. While a promise onRow returned
 * is pending the connection is paused: the caller's consumer (e.g. the copy's memory budget)
 * holds the source back instead of the rows piling up in memory.
 */
export function forEachRowBytes(pool: Pool, sql: string, onRow: RowBytes): Promise<void> {
  return new Promise((resolve, reject) => {
    let failure: unknown;
    let failed = false;
    const query = (pool.pool as unknown as { query(options: { sql: string }): QueryCommand }).query({ sql });
    // Listeners first: should the check below throw, the query still ends without an unheard 'error'.
    // An error ends the query (a pool that cannot connect sends no 'end' after it); a callback's
    // error waits for the end of the result, so the connection goes back to the pool drained.
    query.on('error', (e) => reject(failed ? failure : e));
    query.on('end', () => (failed ? reject(failure) : resolve()));
    const endOfRows = queryRowState(query);
    const row: RowState = function (this: QueryCommand, packet, connection) {
      if (packet.isEOF()) return endOfRows.call(this, packet, connection);
      if (!failed) {
        try {
          const wait = onRow(packet.buffer, packet.offset, packet.end);
          if (wait) {
            const conn = connection as PausableConnection;
            conn.pause();
            wait.then(
              () => conn.resume(),
              (e: unknown) => {
                if (!failed) {
                  failed = true;
                  failure = e;
                }
                conn.resume();
              },
            );
          }
        } catch (e) {
          failed = true;
          failure = e;
        }
      }
      return row;
    };
    query.row = row;
  });
}

/**
 * Walks a row's columns (length-encoded strings, 0xFB for NULL): after `next()`, the column's
 * bytes are `buffer[start, end)`, and `start` is -1 for NULL.
 */
export class ColumnCursor {
  buffer: Buffer = Buffer.alloc(0);
  start = 0;
  end = 0;
  /** Where the next column begins. */
  at = 0;

  /** Starts at a row's first column. */
  reset(buffer: Buffer, at: number): void {
    this.buffer = buffer;
    this.at = at;
  }

  next(): void {
    const b = this.buffer;
    const first = b[this.at]!;
    let from = this.at + 1;
    let length: number;
    if (first < 0xfb) length = first;
    else if (first === 0xfb) {
      this.start = this.end = -1;
      this.at = from;
      return;
    } else if (first === 0xfc) {
      length = b[from]! | (b[from + 1]! << 8);
      from += 2;
    } else if (first === 0xfd) {
      length = b[from]! | (b[from + 1]! << 8) | (b[from + 2]! << 16);
      from += 3;
    } else {
      length = b.readUInt32LE(from) + b.readUInt32LE(from + 4) * 2 ** 32;
      from += 8;
    }
    this.start = from;
    this.end = this.at = from + length;
  }

  get isNull(): boolean {
    return this.start < 0;
  }

  /** The column as UTF-8 text (null for NULL). */
  text(): string | null {
    return this.start < 0 ? null : this.buffer.toString('utf8', this.start, this.end);
  }

  /** The column as a non-negative integer written in digits (up to 2^53); NaN for anything else. */
  digits(): number {
    if (this.start < 0 || this.end === this.start) return NaN;
    let n = 0;
    for (let i = this.start; i < this.end; i++) {
      const d = this.buffer[i]! - 48;
      if (d < 0 || d > 9) return NaN;
      n = n * 10 + d;
    }
    return n;
  }
}
