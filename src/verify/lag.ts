import type { Pool, RowDataPacket } from 'mysql2/promise';

/**
 * The current sync lag in seconds, from cdc_offsets: for partitions with events still to apply
 * (next_offset < high_watermark), how far behind the source's commit time the last applied event
 * is. 0 when sync is caught up or not running (no rows). Verify waits this long on top of
 * --recheck-after before it believes a mismatch, so a change still in flight is not reported.
 */
export async function currentSyncLagSeconds(pool: Pool): Promise<number> {
  const cached = lagCache.get(pool);
  if (cached && Date.now() - cached.at < LAG_CACHE_MS) return cached.seconds;
  const seconds = await readSyncLagSeconds(pool);
  lagCache.set(pool, { at: Date.now(), seconds });
  return seconds;
}

/** Re-checks of many chunks ask within moments of each other: one read a second is enough. */
const LAG_CACHE_MS = 1000;
const lagCache = new WeakMap<Pool, { at: number; seconds: number }>();

async function readSyncLagSeconds(pool: Pool): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT MIN(last_source_ts_ms) AS oldest, COUNT(*) AS behind, UNIX_TIMESTAMP(NOW(6)) * 1000 AS now_ms
       FROM cdc_offsets WHERE high_watermark IS NOT NULL AND next_offset < high_watermark`,
  );
  const r = rows[0];
  if (!r || Number(r.behind) === 0 || r.oldest === null) return 0;
  return Math.max(0, (Number(r.now_ms) - Number(r.oldest)) / 1000);
}
