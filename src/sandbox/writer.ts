import type { Connection, ResultSetHeader } from 'mysql2/promise';
import type { Logger } from '../log.js';
import { connectMysql, quoteId } from '../mysql/connect.js';
import { benchMemberId, MEMBER_COLUMNS, memberValues } from './members.js';

/**
 * The demo's stand-in for the business: one connection to the legacy database that keeps
 * changing members at a steady rate while the cutover runs: inserts of new members, updates
 * (points, balance, updated_at), shard-key changes (member_id moves, so the row moves shard) and
 * deletes. Each change commits on its own, as an application's would.
 */
export interface WriterStats {
  changes: number;
  inserts: number;
  updates: number;
  keyChanges: number;
  deletes: number;
  /** Changes that found no row (the member was deleted or moved before). */
  missed: number;
  errors: number;
  lastError?: string;
}

export interface MemberWriter {
  /** Changes per second from now on (0 pauses). */
  setRate(perSecond: number): void;
  /** Stops after the change in flight; resolves with the totals. */
  stop(): Promise<WriterStats>;
  stats(): WriterStats;
}

// Moved members get ids from here on: never an id the generator makes (those are 10,000,000 + 7i).
const MOVED_ID_BASE = 9_000_000_000;

export async function startMemberWriter(options: { url: string; table: string; seededRows: number; perSecond: number; logger: Logger }): Promise<MemberWriter> {
  const conn = await connectMysql(options.url);
  const table = options.table.split('.').map(quoteId).join('.');
  const stats: WriterStats = { changes: 0, inserts: 0, updates: 0, keyChanges: 0, deletes: 0, missed: 0, errors: 0 };
  let rate = options.perSecond;
  let nextRow = options.seededRows;
  let moved = 0;
  let stopping = false;
  // A fixed seed: the same demo makes the same changes (which rows is then up to timing only).
  let seed = 0x9e3779b9;
  const random = (): number => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const anyMember = (): number => benchMemberId(Math.floor(random() * nextRow));

  async function change(): Promise<void> {
    const dice = random();
    if (dice < 0.3) {
      const values = memberValues(nextRow++);
      await conn.query(`INSERT INTO ${table} (${MEMBER_COLUMNS.map(quoteId).join(', ')}) VALUES (?)`, [values]);
      stats.inserts++;
    } else if (dice < 0.8) {
      const [r] = await conn.query<ResultSetHeader>(
        `UPDATE ${table} SET points = points + ?, balance = balance + ?, updated_at = UTC_TIMESTAMP(6) WHERE member_id = ?`,
        [1 + Math.floor(random() * 500), (random() * 100).toFixed(2), anyMember()],
      );
      if (r.affectedRows === 0) stats.missed++;
      else stats.updates++;
    } else if (dice < 0.9) {
      const [r] = await conn.query<ResultSetHeader>(`UPDATE ${table} SET member_id = ?, updated_at = UTC_TIMESTAMP(6) WHERE member_id = ?`, [MOVED_ID_BASE + ++moved, anyMember()]);
      if (r.affectedRows === 0) stats.missed++;
      else stats.keyChanges++;
    } else {
      const [r] = await conn.query<ResultSetHeader>(`DELETE FROM ${table} WHERE member_id = ?`, [anyMember()]);
      if (r.affectedRows === 0) stats.missed++;
      else stats.deletes++;
    }
    stats.changes++;
  }

  const loop = (async () => {
    let next = Date.now();
    while (!stopping) {
      if (rate <= 0) {
        await sleep(100);
        next = Date.now();
        continue;
      }
      try {
        await change();
      } catch (e) {
        stats.errors++;
        stats.lastError = (e as Error).message;
        options.logger.warn({ err: (e as Error).message }, 'demo writer: a change failed');
      }
      next += 1000 / rate;
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
      else if (wait < -1000) next = Date.now(); // fell behind (a busy machine): do not burst to catch up
    }
  })();

  return {
    setRate(perSecond: number) {
      rate = perSecond;
    },
    async stop() {
      stopping = true;
      await loop;
      await endQuietly(conn);
      return { ...stats };
    },
    stats: () => ({ ...stats }),
  };
}

async function endQuietly(conn: Connection): Promise<void> {
  await conn.end().catch(() => {});
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
