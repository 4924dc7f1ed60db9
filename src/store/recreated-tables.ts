import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { lastCleanVerifyStart } from '../verify/coverage.js';
import { isoTime } from '../mysql/iso-time.js';

/**
 * recreated_shard_tables (migration 150): shard tables `init` created for a table a full copy had
 * already put rows in (or was putting rows in). They are empty, and no job copies into them again
 * by itself. The warning was printed once, from memory: the next init said all was in place.
 *
 * A record stays open until a clean verify of the whole table (the gray gate's kind) begins after
 * it: the rows are back only after a copy or a repair, and verify is what shows they are. A full
 * copy job that completes does not close it: one begun before the drop had finished chunks whose
 * rows were in the dropped table, and never copies them again; after one begun since (full
 * --restart) the gray gate wants a clean verify anyway (fullJobAfterVerify).
 */
type Db = Pool | PoolConnection;

/** One table's open records: what init warns of and status lists. */
export interface RecreatedShardTables {
  table: string;
  /** The newest full copy job of the table when the latest record was written, and its state then. */
  job: number;
  state: string;
  shardTables: number;
  databases: string[];
  /** ISO 8601 UTC: the oldest open record's time, just before init created that table. */
  recordedAt: string;
}

/** A record `r` not yet followed by a clean verify of its table begun after it. */
const OPEN = `r.recorded_at >= COALESCE((${lastCleanVerifyStart('r.table_name')}), '1000-01-01')`;

/**
 * Records each shard table init is about to create for a table a full copy has filled: before the
 * CREATE TABLE, so a kill in between leaves the record (and the table still missing, which the next
 * init creates). One open record per shard table: a rerun after such a kill adds none.
 */
export async function recordRecreatedShardTables(db: Db, tables: { table: string; database: string; job: number; state: string }[]): Promise<void> {
  for (const t of tables) {
    await db.query(
      `INSERT INTO recreated_shard_tables (table_name, shard_database, job_id, job_state)
       SELECT ?, ?, ?, ? FROM DUAL
        WHERE NOT EXISTS (SELECT 1 FROM recreated_shard_tables r WHERE r.table_name = ? AND r.shard_database = ? AND ${OPEN})`,
      [t.table, t.database, t.job, t.state, t.table, t.database],
    );
  }
}

/** The open records, one entry per table (by table name). */
export async function openRecreatedShardTables(db: Db): Promise<RecreatedShardTables[]> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT r.table_name, r.shard_database, r.job_id, r.job_state, ${isoTime('r.recorded_at', 'recorded_at')}
       FROM recreated_shard_tables r WHERE ${OPEN} ORDER BY r.table_name, r.recorded_at, r.id`,
  );
  const out = new Map<string, RecreatedShardTables>();
  for (const r of rows) {
    const t: RecreatedShardTables = out.get(r.table_name) ?? { table: r.table_name, job: 0, state: '', shardTables: 0, databases: [], recordedAt: r.recorded_at };
    if (!t.databases.includes(r.shard_database)) t.databases.push(r.shard_database);
    out.set(r.table_name, { ...t, job: Number(r.job_id), state: r.job_state, shardTables: t.databases.length });
  }
  return [...out.values()];
}

/** The one sentence init and status give for a table's open records. */
export function recreatedWarning(c: RecreatedShardTables): string {
  const one = c.shardTables === 1;
  return (
    `${c.shardTables} shard table${one ? '' : 's'} of ${c.table} (${listed(c.databases)}) ${one ? 'was' : 'were'} created at ${c.recordedAt}, but its full copy ` +
    `(job ${c.job}, ${c.state}) put rows in ${one ? 'it' : 'them'} before: ${one ? 'it is' : 'they are'} empty. ` +
    `Run membermig verify --repair --tables ${c.table} to copy their rows again (or full --restart); said until a clean verify of ${c.table} begins after that`
  );
}

/** Up to five names, then how many more (a server's worth of shard databases is a thousand). */
const listed = (names: string[]): string => (names.length <= 5 ? names.join(', ') : `${names.slice(0, 5).join(', ')} and ${names.length - 5} more`);
