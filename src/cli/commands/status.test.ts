import { describe, expect, it } from 'vitest';
import type { Status } from '../../store/status.js';
import type { TableStatus } from '../../store/status-tables.js';
import { renderStatus } from './status.js';

/** A status of one table whose last verify is `lastVerify`, on a migrated control store. */
function statusWithVerify(lastVerify: TableStatus['lastVerify'], gray: Partial<TableStatus> = {}): Status {
  return {
    control: { database: 'c', reachable: true, exists: true, appliedVersion: 1, latestVersion: 1, problems: [] },
    servers: [{ name: 'a', dc: null, shards: 4, replicas: 0 }],
    shards: { count: 4, function: 'crc32', database: 'm_{shard}' },
    tables: [{ name: 'member', source: 'l.member', target: 'member', shardKey: 'id' }],
    jobs: [],
    workers: [],
    perTable: [
      { table: 'member', fullCopy: null, sync: null, lastVerify, shimMode: null, grayRead: null, grayWrite: null, grayAllowed: 0, grayDenied: 0, deadLettersOpen: 0, repairQueueOpen: 0, leasedChunks: 0, ...gray },
    ],
    problems: [],
  };
}

const verify = { runId: 1, finishedAt: '2026-01-01T00:00:00Z', ageSeconds: 5, scope: 'all rows', repaired: 0, copiedSince: null };

describe('renderStatus', () => {
  it('says a control store with an empty migration ledger is at schema none, not null', () => {
    const base = statusWithVerify(null);
    const shown = renderStatus({ ...base, control: { ...base.control, appliedVersion: null } } as Status);
    expect(shown).toContain('control store c: schema none of 1 (run membermig init)');
  });

  it('says a verify with differences how many, once, in the singular for one', () => {
    const one = renderStatus(statusWithVerify({ ...verify, state: 'differences', differences: 1 }));
    expect(one).toContain('1 difference, 5 s ago (all rows)');
    expect(one).not.toMatch(/differences, \d+ difference/);
    const three = renderStatus(statusWithVerify({ ...verify, state: 'differences', differences: 3, repaired: 1 }));
    expect(three).toContain('3 differences (1 repaired), 5 s ago (all rows)');
    expect(three).not.toMatch(/differences, \d+ difference/);
  });

  it("marks a table's events behind as sync's last report when Kafka could not be asked", () => {
    const sync = { partitions: 8, nextOffsets: [], lagEvents: 0, lagSeconds: 78.8, appliedEvents: 10 };
    const base = statusWithVerify(null, { sync });
    const syncStatus = { partitions: [], captureInstances: [], maxLagMessages: 0, maxLagSeconds: 78.8, deadLetters: { open: 0, resolved: 0, openByTable: [] }, parked: [], lastConnectorOutage: null };
    const blind = renderStatus({ ...base, sync: { ...syncStatus, kafka: { reachable: false, group: 'g', error: 'Kafka at b:9092 (cdc.kafka.brokers): no answer in 3 s' } } } as Status);
    expect(blind).toContain('0 events (last report), 78.8 s');
    expect(blind).toContain("could not ask Kafka at b:9092 (cdc.kafka.brokers): no answer in 3 s: lag events are as of sync's last report");
    const asked = renderStatus({ ...base, sync: { ...syncStatus, kafka: { reachable: true, group: 'g', retentionGaps: [], missingTopics: [] } } } as Status);
    expect(asked).toContain('0 events, 78.8 s');
  });

  it('names the state of a run without differences left', () => {
    expect(renderStatus(statusWithVerify({ ...verify, state: 'clean', differences: 0 }))).toContain('clean, 0 differences, 5 s ago (all rows)');
    expect(renderStatus(statusWithVerify({ ...verify, state: 'clean', differences: 2, repaired: 2 }))).toContain('clean, 2 differences (2 repaired), 5 s ago');
  });

  it('shows the gray lists beside the percentages: an allowlisted member is on MySQL at 0%', () => {
    const text = renderStatus(statusWithVerify(null, { shimMode: 'dual_mysql_primary', grayRead: '0%', grayWrite: '0%', grayAllowed: 1, grayDenied: 2 }));
    expect(text).toContain('0% / 0% +1 allowed -2 denied');
    expect(renderStatus(statusWithVerify(null, { shimMode: 'legacy_only', grayRead: '5%', grayWrite: '0%' }))).toMatch(/5% \/ 0%\s/);
  });

  it('a copy stopped while planning does not know its chunk total yet', () => {
    const copy = { jobId: 4, state: 'planning', stopped: true, chunksDone: 1, chunksTotal: 2, chunksFailed: 0, rows: 50000 };
    expect(renderStatus(statusWithVerify(null, { fullCopy: copy }))).toContain('stopped while planning 1/2+ chunks, 50000 rows');
    expect(renderStatus(statusWithVerify(null, { fullCopy: { ...copy, state: 'running', stopped: false, chunksTotal: 7 } }))).toContain('running 1/7 chunks, 50000 rows');
  });

  it('says when a full copy began after the last verify: the rows it checked are gone', () => {
    expect(renderStatus(statusWithVerify({ ...verify, state: 'clean', differences: 0, copiedSince: 7 }))).toContain('clean, 0 differences, 5 s ago (all rows); full copy job 7 began after it: not verified since');
  });
});
