import type { Pool } from 'mysql2/promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMysqlPool } from '../mysql/connect.js';
import { scratchControlStore } from '../../test/support/scratch-control.js';
import { currentSyncLagSeconds, MAX_LAG_WAIT_SECONDS } from './lag.js';

/**
 * How long a re-check waits for sync's lag: only a sync reporting now, of the configured group, and
 * at most a minute. A day-old row of a sync stopped while behind made verify sleep a day per mismatch.
 */
describe('currentSyncLagSeconds', () => {
  const store = scratchControlStore('lag');
  let pool: Pool;
  beforeAll(async () => {
    pool = await store.open();
  });
  afterAll(() => store.drop());
  beforeEach(() => pool.query('DELETE FROM cdc_offsets'));

  /** A partition 10 events behind whose last applied event's source time is `sourceAgoS` ago, reported `reportedAgoS` ago. */
  const behind = (group: string, partition: number, sourceAgoS: number, reportedAgoS: number) =>
    pool.query(
      `INSERT INTO cdc_offsets (consumer_group, topic, partition_no, next_offset, high_watermark, last_source_ts_ms, applied_events, updated_at)
       VALUES (?, 't', ?, 90, 100, CAST(UNIX_TIMESTAMP(NOW(6)) * 1000 AS SIGNED) - ? * 1000, 90, NOW(6) - INTERVAL ? SECOND)`,
      [group, partition, sourceAgoS, reportedAgoS],
    );
  // A fresh pool per question: answers are cached a second per pool.
  const ask = async (group?: string) => {
    const fresh = createMysqlPool(store.url);
    try {
      return await currentSyncLagSeconds(fresh, group);
    } finally {
      await fresh.end();
    }
  };

  it('is the lag of a sync reporting now', async () => {
    await behind('g', 0, 5, 1);
    expect(await ask('g')).toBeGreaterThanOrEqual(5);
    expect(await ask('g')).toBeLessThan(30);
  });

  it('leaves out a sync that stopped while behind (a day ago), and other consumer groups', async () => {
    await behind('g', 0, 86_400, 86_400);
    await behind('old-group', 0, 40, 1);
    expect(await ask('g')).toBe(0);
    expect(await ask()).toBeGreaterThanOrEqual(40); // no group configured: every group reporting now counts
  });

  it('is at most a minute, however far behind a running sync is', async () => {
    await behind('g', 0, 86_400, 1);
    expect(await ask('g')).toBe(MAX_LAG_WAIT_SECONDS);
  });
});
