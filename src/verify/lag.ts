import type { Pool, RowDataPacket } from 'mysql2/promise';
import { SYNC_SILENT_MS } from '../cdc/offsets.js';

/**
 * The current sync lag in seconds, from cdc_offsets: for partitions with events still to apply
 * (next_offset < high_watermark), how far behind the source's commit time the last applied event
 * is. Verify waits this long on top of --recheck-after before it believes a mismatch, so a change
 * still in flight is not reported. Only a sync reporting now counts (of the configured consumer
 * group, when there is one): a sync stopped while behind, or an old group, grew the wait by a
 * second every second (a day-old row: a day's sleep per mismatch). At most MAX_LAG_WAIT_SECONDS:
 * past that the in-flight wait (in-flight.ts) and the next re-checks take over.
 */
export async function currentSyncLagSeconds(pool: Pool, group?: string): Promise<number> {
  const cached = lagCache.get(pool);
  if (cached && cached.group === group && Date.now() - cached.at < LAG_CACHE_MS) return cached.seconds;
  const seconds = Math.min(MAX_LAG_WAIT_SECONDS, await readSyncLagSeconds(pool, group));
  lagCache.set(pool, { at: Date.now(), group, seconds });
  return seconds;
}

/** The longest a re-check waits for sync's lag, on top of --recheck-after. */
export const MAX_LAG_WAIT_SECONDS = 60;

/** Re-checks of many chunks ask within moments of each other: one read a second is enough. */
const LAG_CACHE_MS = 1000;
const lagCache = new WeakMap<Pool, { at: number; group: string | undefined; seconds: number }>();

async function readSyncLagSeconds(pool: Pool, group: string | undefined): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT MIN(last_source_ts_ms) AS oldest, COUNT(*) AS behind, UNIX_TIMESTAMP(NOW(6)) * 1000 AS now_ms
       FROM cdc_offsets
      WHERE high_watermark IS NOT NULL AND next_offset < high_watermark AND updated_at > NOW(6) - INTERVAL ? SECOND${group === undefined ? '' : ' AND consumer_group = ?'}`,
    group === undefined ? [SYNC_SILENT_MS / 1000] : [SYNC_SILENT_MS / 1000, group],
  );
  const r = rows[0];
  if (!r || Number(r.behind) === 0 || r.oldest === null) return 0;
  return Math.max(0, (Number(r.now_ms) - Number(r.oldest)) / 1000);
}
