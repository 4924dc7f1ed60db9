import { format, type Pool, type RowDataPacket } from 'mysql2/promise';
import type { RowValue } from '../rows/types.js';

/**
 * How big a multi-row statement may be: the shard writer's, and the control store's INSERTs of
 * parked writes and dead letters. A server drops the connection of a client that sends a statement
 * over its max_allowed_packet (the client sees ECONNRESET, which reads as "server down"): sync then
 * parked every write of that shard server behind it for ever, and a batch of rows each well under
 * the limit did the same when together they were over it (1 MB is still the limit on some
 * servers). So statements are cut by the server's own limit, and a statement of one row that
 * cannot fit is refused, named, instead of being sent.
 */

/** Room left under max_allowed_packet (the command byte and what a bound may miss). */
const PACKET_MARGIN = 1024;

/** A write the server could never take: one row's (or key's) statement alone is over its max_allowed_packet. */
export class StatementTooLargeError extends Error {
  override name = 'StatementTooLargeError';
  readonly code = 'MEMBERMIG_STATEMENT_TOO_LARGE';
}

/**
 * The server's max_allowed_packet, asked once per pool (a failed ask is asked again on the next use).
 * A connection keeps the value it started with, so a limit raised on the server counts from the
 * process's next start (e.g. the `sync --retry-dead-letters` that follows it).
 */
export function packetLimitOf(pool: Pool): Promise<number> {
  let limit = limits.get(pool);
  if (!limit) {
    limit = pool.query<RowDataPacket[]>('SELECT @@max_allowed_packet AS n').then(([rows]) => Number(rows[0]!.n));
    limits.set(pool, limit);
    const asked = limit;
    asked.catch(() => limits.get(pool) === asked && limits.delete(pool));
  }
  return limit;
}
const limits = new WeakMap<Pool, Promise<number>>();

/**
 * The most bytes a value can take in the SQL text mysql2 writes for it: a string's UTF-16 units
 * become at most 3 bytes each (BMP characters outside ASCII; escaped ASCII takes 2, a surrogate
 * pair 4 for two units) and two quotes; bytes go as X'hex'.
 */
function sqlValueBytes(value: RowValue): number {
  if (value === null) return 4;
  return typeof value === 'string' ? 3 * value.length + 2 : 2 * value.length + 3;
}

/** The most bytes a statement's values can take, plus a separator per value. */
export function sqlValuesBytes(values: readonly RowValue[]): number {
  let n = 0;
  for (const v of values) n += sqlValueBytes(v) + 2;
  return n;
}

export interface StatementCut<T> {
  /** At most this many items in one statement. */
  maxItems: number;
  /** The most bytes of SQL an item adds (its values, separators and its share of the text). */
  itemBytes: (item: T) => number;
  /** Bytes of the statement's text without items. */
  fixedBytes: number;
  /** A memory bound on a statement's bytes, under the server's limit. */
  capBytes: number;
}

export interface Statement {
  sql: string;
  values: RowValue[];
}

/**
 * The items in statements of at most `maxItems`, cut before the bound of their bytes would pass
 * the server's limit (or capBytes). A statement of one item whose bound is over is measured
 * exactly (the bound may say more than it takes) and, if the server cannot take it, refused with
 * StatementTooLargeError naming the item (`what`): nothing of the call is written then.
 */
export function inStatements<T>(items: readonly T[], cut: StatementCut<T>, packetLimit: number, build: (part: T[]) => Statement, what: (item: T) => string): Statement[] {
  const budget = Math.min(cut.capBytes, packetLimit - PACKET_MARGIN);
  const statements: Statement[] = [];
  for (let i = 0; i < items.length; ) {
    let end = i + 1;
    let bytes = cut.fixedBytes + cut.itemBytes(items[i]!);
    const alone = bytes;
    while (end < items.length && end - i < cut.maxItems) {
      const next = cut.itemBytes(items[end]!);
      if (bytes + next > budget) break;
      bytes += next;
      end++;
    }
    const statement = build(items.slice(i, end));
    if (end === i + 1 && alone > budget) checkFitsAlone(statement, packetLimit, () => what(items[i]!));
    statements.push(statement);
    i = end;
  }
  return statements;
}

function checkFitsAlone(statement: Statement, packetLimit: number, what: () => string): void {
  const bytes = Buffer.byteLength(format(statement.sql, statement.values));
  if (bytes + PACKET_MARGIN <= packetLimit) return;
  throw new StatementTooLargeError(
    `${what()} takes ${bytes} bytes of SQL, over the server's max_allowed_packet of ${packetLimit} bytes: it was not written (raise max_allowed_packet on that server)`,
  );
}
