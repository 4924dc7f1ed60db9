import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { RefusedError } from '../errors.js';
import { formatRanges } from '../ranges.js';
import type { PoisonEvent } from './types.js';
import { isoTime } from '../mysql/iso-time.js';
import { BATCH_BYTES, type RowValue } from '../rows/types.js';
import { inStatements, packetLimitOf, sqlValuesBytes } from '../mysql/packet.js';

/** partition_no of a direct-CDC dead letter (migration 060: NULL would not be unique). */
const NO_PARTITION = -1;

/**
 * dead_letters (migrations/control/002_phases.sql): events that could not be decoded or applied.
 * They are written before the offset that passes them is committed, so none is ever lost; the
 * unique (source, partition, offset) key makes a replayed batch record the same event once (one an
 * operator skipped stays skipped).
 */
export async function recordDeadLetters(pool: Pool, poisons: PoisonEvent[]): Promise<void> {
  if (poisons.length === 0) return;
  const head = 'INSERT INTO dead_letters (source, partition_no, offset_no, table_name, message_key, raw_value, reason) VALUES ';
  const tail = ' ON DUPLICATE KEY UPDATE reason = VALUES(reason), table_name = VALUES(table_name), resolved_at = IF(skipped_by IS NULL, NULL, resolved_at)';
  const valuesOf = (p: PoisonEvent): RowValue[] => [p.origin.source, String(p.origin.partition ?? NO_PARTITION), p.origin.offset, p.table ?? null, p.messageKey, p.rawValue, p.reason.slice(0, 60_000)];
  // Statements cut by the control server's max_allowed_packet: raw values of MB-sized rows in one INSERT
  // were over it, and the dropped connection read as the control store down.
  const statements = inStatements(
    poisons,
    { maxItems: 500, capBytes: BATCH_BYTES, fixedBytes: head.length + tail.length, itemBytes: (p) => 40 + sqlValuesBytes(valuesOf(p)) },
    await packetLimitOf(pool),
    (part) => ({ sql: head + part.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ') + tail, values: part.flatMap(valuesOf) }),
    (p) => `the dead letter of ${p.origin.source}${p.origin.partition === undefined ? '' : ` partition ${p.origin.partition}`} offset ${p.origin.offset} (into the control store)`,
  );
  for (const { sql, values } of statements) await pool.query(sql, values);
}

export interface DeadLetter {
  id: number;
  source: string;
  partition: number | null;
  offset: string;
  table: string | null;
  messageKey: Buffer | null;
  rawValue: Buffer | null;
  reason: string;
}

/**
 * Open dead letters in log order (per source and partition), oldest first. Kafka offsets are
 * decimal text and LSN:seqval positions fixed-width hex, so (length, text) is log order for both.
 */
export async function openDeadLetters(pool: Pool, limit = 10_000): Promise<DeadLetter[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT id, source, partition_no, offset_no, table_name, message_key, raw_value, reason FROM dead_letters
      WHERE resolved_at IS NULL ORDER BY source, partition_no, LENGTH(offset_no), offset_no, id LIMIT ?`,
    [limit],
  );
  return rows.map((r) => ({ ...identity(r), messageKey: r.message_key, rawValue: r.raw_value }));
}

/** A dead_letters row's id, where its event came from, its table and why. */
function identity(r: RowDataPacket): Pick<DeadLetter, 'id' | 'source' | 'partition' | 'offset' | 'table' | 'reason'> {
  return {
    id: Number(r.id),
    source: r.source,
    partition: Number(r.partition_no) === NO_PARTITION ? null : Number(r.partition_no),
    offset: r.offset_no,
    table: r.table_name,
    reason: r.reason,
  };
}

export async function markDeadLetter(pool: Pool, id: number, outcome: { resolved: true } | { resolved: false; reason: string }): Promise<void> {
  if (outcome.resolved) await pool.query('UPDATE dead_letters SET retried_at = NOW(6), resolved_at = NOW(6) WHERE id = ?', [id]);
  else await pool.query<ResultSetHeader>('UPDATE dead_letters SET retried_at = NOW(6), reason = ? WHERE id = ?', [outcome.reason.slice(0, 60_000), id]);
}

/**
 * Retries the open dead letters that `mine` accepts, in log order: `attempt` returns null when the
 * dead letter is now applied (it is marked resolved), else why not (its reason is updated). Stops
 * between two when `stopping()` says so (the rest stay open for the next retry).
 */
export async function retryOpenDeadLetters(
  pool: Pool,
  attempt: (dl: DeadLetter) => Promise<string | null>,
  mine: (dl: DeadLetter) => boolean = () => true,
  stopping: () => boolean = () => false,
): Promise<{ resolved: number; stillFailing: number }> {
  let resolved = 0;
  let stillFailing = 0;
  for (const dl of await openDeadLetters(pool)) {
    if (stopping()) break;
    if (!mine(dl)) continue;
    const reason = await attempt(dl);
    if (reason === null) resolved++;
    else stillFailing++;
    await markDeadLetter(pool, dl.id, reason === null ? { resolved: true } : { resolved: false, reason });
  }
  return { resolved, stillFailing };
}

/** A dead letter as an operator reads it (`sync dead-letters`): where it came from, why, and what became of it. */
export interface DeadLetterEntry {
  id: number;
  source: string;
  partition: number | null;
  offset: string;
  table: string | null;
  reason: string;
  createdAt: string;
  retriedAt: string | null;
  resolvedAt: string | null;
  skipped: { by: string; reason: string } | null;
}


/** Dead letters, newest first: the open ones, or with `all` the resolved and skipped ones too. */
export async function listDeadLetters(pool: Pool, options: { table?: string; all?: boolean; limit: number }): Promise<DeadLetterEntry[]> {
  // Those naming no table (not decodable, an unknown table) may be any table's: the gates count them for each.
  const where = [options.all ? '1 = 1' : 'resolved_at IS NULL', ...(options.table !== undefined ? ['(table_name = ? OR table_name IS NULL)'] : [])];
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT id, source, partition_no, offset_no, table_name, reason, ${isoTime('created_at')}, ${isoTime('retried_at')}, ${isoTime('resolved_at')}, skipped_by, skipped_reason
       FROM dead_letters WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT ?`,
    [...(options.table !== undefined ? [options.table] : []), options.limit],
  );
  return rows.map((r) => ({
    ...identity(r),
    createdAt: r.created_at,
    retriedAt: r.retried_at,
    resolvedAt: r.resolved_at,
    skipped: r.skipped_by === null ? null : { by: r.skipped_by, reason: r.skipped_reason },
  }));
}

/**
 * Marks open dead letters skipped (never applied): resolved, with who and why. Refuses, changing
 * nothing, when an id is unknown or no longer open.
 */
export async function skipDeadLetters(pool: Pool, ids: number[], skip: { operator: string; reason: string }): Promise<number> {
  const conn = await pool.getConnection();
  try {
    await conn.beginTransaction();
    const [rows] = await conn.query<RowDataPacket[]>('SELECT id, resolved_at FROM dead_letters WHERE id IN (?) FOR UPDATE', [ids]);
    const found = new Map(rows.map((r) => [Number(r.id), r.resolved_at !== null]));
    const unknown = ids.filter((id) => !found.has(id));
    const closed = ids.filter((id) => found.get(id) === true);
    if (unknown.length > 0 || closed.length > 0) {
      await conn.rollback();
      const problems = [unknown.length > 0 ? `no dead letter ${formatRanges(unknown)}` : '', closed.length > 0 ? `${formatRanges(closed)} already resolved` : ''].filter(Boolean);
      throw new RefusedError(`skip-dead-letters: ${problems.join('; ')} (see sync dead-letters); nothing was skipped`);
    }
    const [res] = await conn.query<ResultSetHeader>('UPDATE dead_letters SET resolved_at = NOW(6), skipped_by = ?, skipped_reason = ? WHERE id IN (?)', [
      skip.operator.slice(0, 128),
      skip.reason.slice(0, 2048),
      ids,
    ]);
    await conn.commit();
    return res.affectedRows;
  } catch (e) {
    await conn.rollback().catch(() => {});
    throw e;
  } finally {
    conn.release();
  }
}

export interface DeadLetterCounts {
  open: number;
  resolved: number;
  /** Open ones per table (null: the table could not be told). */
  openByTable: { table: string | null; count: number }[];
}

export async function deadLetterCounts(pool: Pool): Promise<DeadLetterCounts> {
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT table_name, resolved_at IS NULL AS open, COUNT(*) AS n FROM dead_letters GROUP BY table_name, resolved_at IS NULL ORDER BY table_name',
  );
  let open = 0;
  let resolved = 0;
  const openByTable: { table: string | null; count: number }[] = [];
  for (const r of rows) {
    const n = Number(r.n);
    if (Number(r.open) === 1) {
      open += n;
      openByTable.push({ table: r.table_name, count: n });
    } else resolved += n;
  }
  return { open, resolved, openByTable };
}
