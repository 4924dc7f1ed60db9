import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../../config/schema.js';
import { silentLogger } from '../../log.js';
import { deadLetterCounts, retryOpenDeadLetters } from '../deadletters.js';
import { waitingForParked } from '../parking.js';
import { applyOrDeadLetter, openApplyRuntime, type ApplyRuntime, type SyncOutcome } from '../runtime.js';
import type { SyncOptions } from '../sync.js';
import type { ChangeEvent } from '../types.js';
import { openMssqlCdcSource } from './index.js';
import { Lsn } from './lsn.js';
import type { MssqlCdcSource, PollResult } from './source.js';
import type { SourceReader } from '../../source/reader.js';
import { recopyKeys } from '../recopy.js';
import { holdRunLock } from '../../store/run-lock.js';

/**
 * `membermig sync` with `cdc.mssql`: reads SQL Server's own CDC tables (no Kafka), applies each
 * page through the same apply path as Kafka events, and saves each capture instance's LSN
 * position after the page is durable (src/cdc/mssql/source.ts). Runs until the signal aborts, or
 * with untilCaughtUp until it has applied everything up to the max LSN it saw at the start of a
 * poll and no write is parked.
 */

export interface MssqlSyncInstance {
  instance: string;
  table: string;
  events: number;
  deadLettered: number;
  /** Where the instance stands: `lsn` or `lsn:seqval` (hex). */
  position: string | null;
}

export interface MssqlSyncResult extends SyncOutcome {
  source: 'mssql';
  instances: MssqlSyncInstance[];
}

export async function runMssqlSync(config: Config, options: SyncOptions = {}): Promise<MssqlSyncResult> {
  const logger = options.logger ?? silentLogger;
  const started = Date.now();
  const stopping = () => options.signal?.aborted === true;
  const rt = await openApplyRuntime(config, logger, stopping);
  let releaseRunLock: (() => Promise<void>) | undefined;
  try {
    // Positions are saved per capture instance with no owner: a second run would re-apply older
    // pages over rows the first one wrote, and the last to save would win.
    releaseRunLock = await holdRunLock(
      rt.store.pool,
      'sync.mssql',
      'another membermig sync from SQL Server CDC is running on this control store: run one at a time (two would apply older changes over newer ones)',
    );
  } catch (e) {
    await rt.close();
    throw e;
  }
  const result: MssqlSyncResult = { source: 'mssql', stoppedBy: 'signal', started: false, instances: [], eventsApplied: 0, deadLettered: 0, deadLetters: { open: 0, resolved: 0 }, deletesKept: {}, parked: {}, elapsedSeconds: 0 };
  let cdc: Awaited<ReturnType<typeof openMssqlCdcSource>> | undefined;
  try {
    const apply = async (events: ChangeEvent[]) => {
      const outcome = await applyOrDeadLetter(rt, events, eventAsRaw);
      result.eventsApplied += outcome.applied;
      result.deadLettered += outcome.deadLettered;
      countApplied(rt, events, outcome.deadLettered);
    };
    cdc = await openMssqlCdcSource(config, { apply, logger, control: rt.store.pool, specs: rt.apply.specs });
    result.started = true;
    if (options.metricsPort !== undefined) {
      result.metricsPort = await rt.metrics.listen(options.metricsPort, options.metricsHost);
      logger.info({ port: result.metricsPort }, 'metrics at /metrics');
    }
    if (options.retryDeadLetters) result.retried = await retryDeadLetters(rt, cdc, Object.values(config.cdc!.mssql!.capture_instances));

    const onPoll = (poll: PollResult) => mergePoll(result, poll);
    if (options.untilCaughtUp) {
      onPoll(await cdc.source.pollOnce(options.signal));
      // Writes parked for a server that was down count as not yet applied.
      const nothingParked = waitingForParked(rt.logger);
      while (!stopping() && !nothingParked(await rt.parking.counts())) await sleep(options.caughtUpCheckMs ?? 300);
      if (!stopping()) result.stoppedBy = 'caught-up';
    } else {
      await cdc.source.run(options.signal ?? new AbortController().signal, onPoll);
    }
    const counts = await deadLetterCounts(rt.store.pool);
    result.deadLetters = { open: counts.open, resolved: counts.resolved };
    result.parked = Object.fromEntries(await rt.parking.counts());
    result.deletesKept = { ...rt.deletesKept };
    result.elapsedSeconds = (Date.now() - started) / 1000;
    return result;
  } finally {
    await cdc?.close();
    await releaseRunLock();
    await rt.close();
  }
}

/** A dead letter of an apply failure holds the change as JSON (key and after-image), readable in status. */
function eventAsRaw(event: ChangeEvent): { messageKey: Buffer; rawValue: Buffer } {
  const json = (v: unknown) => Buffer.from(JSON.stringify(v, (_k, x) => (Buffer.isBuffer(x) || (x && x.type === 'Buffer') ? '0x' + Buffer.from(x.data ?? x).toString('hex') : x)));
  return { messageKey: json(event.key), rawValue: json({ op: event.op, table: event.table, after: event.after }) };
}

function countApplied(rt: ApplyRuntime, events: ChangeEvent[], failed: number): void {
  if (events.length === 0) return;
  const instance = events[0]!.origin.source;
  rt.metrics.applied.inc({ topic: instance }, events.length - failed);
  if (failed > 0) rt.metrics.deadLettered.inc({ topic: instance }, failed);
  const ts = events[events.length - 1]!.sourceTsMs;
  if (ts !== undefined) rt.metrics.lagSeconds.set({ topic: instance, partition: '' }, Math.max(0, (Date.now() - ts) / 1000));
}

function mergePoll(result: MssqlSyncResult, poll: PollResult): void {
  for (const p of poll.instances) {
    const known = result.instances.find((i) => i.instance === p.instance);
    if (known) {
      known.events += p.events;
      known.deadLettered += p.poison;
      known.position = p.position;
    } else result.instances.push({ instance: p.instance, table: p.table, events: p.events, deadLettered: p.poison, position: p.position });
    result.deadLettered += p.poison;
  }
}

/**
 * Replays the open dead letters of the configured capture instances, in log order: each change is
 * read again from CDC at its (lsn, seqval) for its keys, which are then copied again from the
 * legacy table (src/cdc/recopy.ts). One that cleanup already removed cannot be told: its row is
 * for `verify --repair`, which the reason says.
 */
async function retryDeadLetters(rt: ApplyRuntime, cdc: { source: MssqlCdcSource; reader: SourceReader }, instances: string[]): Promise<{ resolved: number; stillFailing: number }> {
  const ours = new Set(instances.map((i) => i.toLowerCase()));
  const { resolved, stillFailing } = await retryOpenDeadLetters(
    rt.store.pool,
    async (dl) => {
      const [lsn, seqval] = dl.offset.split(':');
      const change = lsn && seqval ? await cdc.source.changeAt(dl.source, Lsn.parse(lsn), Lsn.parse(seqval)) : null;
      if (!change) return `the change at ${dl.offset} is no longer in CDC (cleanup removed it): repair the row with membermig verify --repair`;
      if (change.poison.length > 0) return change.poison[0]!.reason;
      return recopyKeys(rt.apply, cdc.reader, change.events);
    },
    (dl) => ours.has(dl.source.toLowerCase()),
    () => rt.apply.shouldStop?.() === true,
  );
  rt.logger.info({ resolved, stillFailing }, 'dead letters retried');
  return { resolved, stillFailing };
}
