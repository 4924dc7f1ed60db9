import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Lsn } from '../src/cdc/mssql/lsn.js';
import { markCaughtUp, savePosition } from '../src/cdc/mssql/position.js';
import { openControlStore, setupControlStore, type ControlStore } from '../src/store/control.js';
import { collectStatus } from '../src/store/status.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * Clocks that disagree: the host a command runs on, the control server, the legacy server whose
 * commit times Debezium and SQL Server CDC report. Lags are the control server's clock against the
 * times stored there, whatever the clock of the host asking.
 */
describe('clocks that disagree', () => {
  let env: TestEnv;
  let store: ControlStore;
  const controlNowMs = async () => {
    const [rows] = await store.pool.query<RowDataPacket[]>('SELECT CAST(UNIX_TIMESTAMP(NOW(6)) * 1000 AS SIGNED) AS now_ms');
    return Number(rows[0]!.now_ms);
  };
  const lsn = { lsn: Lsn.parse('0000002b00000f000001'), seqval: null };
  const mssqlConfig = () => ({ ...env.config, cdc: { mssql: { capture_instances: { member: 'dbo_Member' }, poll_interval_ms: 1000 } } });

  beforeAll(async () => {
    env = await createTestEnv();
    await setupControlStore(env.config);
    store = openControlStore(env.config);
  });
  afterAll(async () => {
    await store?.close();
    await env?.cleanup();
  });
  beforeEach(async () => {
    await store.pool.query('DELETE FROM cdc_lsn_positions');
  });
  afterEach(() => vi.useRealTimers());

  it("status on a host whose clock is 10 minutes ahead shows a capture instance caught up just now as caught up (the control server's clock)", async () => {
    await savePosition(store.pool, { instance: 'dbo_Member', table: 'member', position: lsn, eventsApplied: 1, lastSourceTsMs: (await controlNowMs()) - 60_000 });
    await markCaughtUp(store.pool, 'dbo_Member', 'member', lsn);
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 600_000 });
    const status = await collectStatus(mssqlConfig());
    expect(status.sync!.captureInstances[0]!.lagSeconds).toBeLessThanOrEqual(1);
    expect(status.problems.filter((p) => p.includes('sync lag'))).toEqual([]);
  });

  it('status on a host whose clock is 10 minutes behind still sees a direct-CDC sync silent for 5 minutes', async () => {
    await markCaughtUp(store.pool, 'dbo_Member', 'member', lsn);
    await store.pool.query('UPDATE cdc_lsn_positions SET caught_up_at = NOW(6) - INTERVAL 300 SECOND');
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 600_000 });
    const status = await collectStatus(mssqlConfig());
    expect(status.sync!.captureInstances[0]!.lagSeconds).toBeGreaterThanOrEqual(300);
    expect(status.problems).toEqual(expect.arrayContaining([expect.stringMatching(/^sync lag 30\d\.0 s is over/)]));
  });
});
