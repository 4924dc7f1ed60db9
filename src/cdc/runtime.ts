import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { TableSpec } from '../rows/types.js';
import { createSourceReader, describeTables } from '../source/index.js';
import type { SourceReader } from '../source/reader.js';
import { shardMapFromConfig } from '../shard/map.js';
import { planShardTables } from '../target/tables.js';
import { legacyBehindKeyIds } from '../store/repair-queue.js';
import { isTransient } from '../mysql/retry.js';
import { openControlStore, requireUsableStore, type ControlStore } from '../store/control.js';
import { createShardWriter, orderingStamp, type ShardWriter } from '../target/writer.js';
import { applyChanges, type ApplyContext } from './apply.js';
import type { LegacyRows } from './legacy-redo.js';
import { recordDeadLetters } from './deadletters.js';
import { SyncMetrics } from './metrics.js';
import { ParkingLot } from './parking.js';
import type { ChangeEvent, PoisonEvent } from './types.js';
import { refuseSyncWhileCopying, underFullStartLock } from '../copy/job.js';
import { announceProcess, type ProcessPresence } from '../store/workers.js';
import { SYNC_SILENT_MS } from './offsets.js';

/**
 * What every change source of `sync` applies through: the control store, the shard writer, the
 * parking lot for servers that cannot take writes now, the metrics, and the apply context that
 * ties them together.
 * The Kafka consumer (sync.ts) and the direct SQL Server CDC source (mssql/sync.ts) differ only in
 * where events come from and how their position is saved.
 */
export interface ApplyRuntime {
  config: Config;
  logger: Logger;
  store: ControlStore;
  writer: ShardWriter;
  metrics: SyncMetrics;
  parking: ParkingLot;
  apply: ApplyContext;
  /** Per table, deletes that kept a newer row so far (src/cdc/kept-deletes.ts): for the run's result. */
  deletesKept: Record<string, number>;
  /** Releases everything, in order (drainers first, then pools). */
  close(): Promise<void>;
}

/** What a sync run reports whatever its change source. */
export interface SyncOutcome {
  stoppedBy: 'caught-up' | 'signal';
  /** False when the run was stopped before its change source answered (Kafka brokers away): nothing was read. */
  started: boolean;
  eventsApplied: number;
  deadLettered: number;
  /** With --retry-dead-letters. */
  retried?: { resolved: number; stillFailing: number };
  deadLetters: { open: number; resolved: number };
  /**
   * Per table, deletes that kept the row the shard holds with a newer updated_at (logged with their
   * keys): rows legacy may have deleted, which verify reports.
   */
  deletesKept: Record<string, number>;
  /** Writes waiting in the parking lot at the end, per shard server (any sync process's): not applied yet. */
  parked: Record<string, number>;
  metricsPort?: number;
  elapsedSeconds: number;
}

/**
 * kafkajs heartbeats between batches only: a write that waits on a lock longer than the Kafka
 * session gets the member dropped, its partitions handed to another, and its write landing late
 * over that member's newer rows. Lock waits end well inside the session instead; the server's
 * writes are then parked (ER_LOCK_WAIT_TIMEOUT is transient) and the batch commits in time.
 */
function syncLockWaitSeconds(config: Config): number | undefined {
  const sessionMs = config.cdc?.kafka?.session_timeout_ms;
  return sessionMs === undefined ? undefined : Math.max(1, Math.floor(sessionMs / 3000));
}

/** Opens the runtime: describes the tables at the source and checks the control store is migrated. */
export async function openApplyRuntime(config: Config, logger: Logger, stopping: () => boolean): Promise<ApplyRuntime> {
  const specs = await describeAll(config, logger);
  for (const spec of specs) {
    if (spec.updatedAt === undefined || orderingStamp(spec)) continue;
    const type = spec.columns.find((c) => c.source === spec.updatedAt)?.targetType;
    logger.warn({ table: spec.name, column: spec.updatedAt, type }, `tables.${spec.name}.updated_at is a ${type} column, which does not sort by time: sync writes legacy's rows without comparing times`);
  }
  const store = openControlStore(config, 4);
  const writer = createShardWriter(config, { lockWaitSeconds: syncLockWaitSeconds(config) });
  const metrics = new SyncMetrics();
  const specsByName = new Map(specs.map((s) => [s.name, s]));
  const deletesKept: Record<string, number> = {};
  const onDeletesKept = (table: string, count: number) => {
    deletesKept[table] = (deletesKept[table] ?? 0) + count;
    metrics.deletesKept.inc({ table }, count);
  };
  const parking = new ParkingLot(store.pool, logger, {
    writer,
    specs: specsByName,
    deadLetter: async (poison) => {
      await recordDeadLetters(store.pool, [poison]);
      metrics.deadLettered.inc({ topic: poison.origin.source });
    },
    onDown: (server) => metrics.serverDown.set({ server }, 1),
    onDrained: (server) => metrics.serverDown.set({ server }, 0),
    onDeletesKept,
    stopping,
  });
  const legacy = lazyLegacyRows(config, logger);
  let presence: ProcessPresence | undefined;
  const close = async () => {
    await presence?.stop();
    await parking.stop();
    await legacy.close();
    await metrics.close();
    await writer.close();
    await store.close();
  };
  try {
    await requireUsableStore(store, config.shards);
    // Checked and announced under full's start lock: a full starting at the same moment sees this sync, or this sees its job.
    presence = await underFullStartLock(store, async () => {
      await refuseSyncWhileCopying(store.pool, specs.map((s) => s.name));
      return announceProcess(store.pool, 'sync', logger, SYNC_SILENT_MS / 3);
    });
    await parking.resumeAll();
  } catch (e) {
    await close();
    throw e;
  }
  return {
    config,
    logger,
    store,
    writer,
    metrics,
    parking,
    deletesKept,
    apply: {
      writer,
      specs: specsByName,
      logger,
      parking,
      shouldStop: stopping,
      onDeletesKept,
      onServerDown: (server) => metrics.serverDown.set({ server }, 1),
      onServerUp: (server) => metrics.serverDown.set({ server }, 0),
      heldKeys: (tables) => legacyBehindKeyIds(store.pool, tables.flatMap((t) => specsByName.get(t) ?? [])),
      legacy,
    },
    close,
  };
}

/** The legacy reader, opened at the first event that needs it (most syncs never do). */
function lazyLegacyRows(config: Config, logger: Logger): LegacyRows & { close(): Promise<void> } {
  let reader: SourceReader | undefined;
  return {
    rowsByKey: (spec, keys) => (reader ??= createSourceReader(config, logger)).rowsByKey(spec, keys),
    close: async () => reader?.close(),
  };
}

/**
 * Applies events and dead-letters the ones the target refused, with `raw` giving each failed
 * event's message key and raw bytes. Returns how many were applied and how many dead-lettered.
 */
export async function applyOrDeadLetter(
  rt: ApplyRuntime,
  events: ChangeEvent[],
  raw: (event: ChangeEvent) => { messageKey: Buffer | null; rawValue: Buffer | null },
): Promise<{ applied: number; deadLettered: number }> {
  const { failed, held } = await applyChanges(rt.apply, events);
  const poisons: PoisonEvent[] = failed.map((f) => ({ origin: f.event.origin, table: f.event.table, ...raw(f.event), reason: f.reason }));
  await recordDeadLetters(rt.store.pool, poisons);
  return { applied: events.length - failed.length - held.length, deadLettered: failed.length };
}

/**
 * Describes the tables at the source and checks the shard tables sync writes (shape, and no unique
 * index besides the primary key: an upsert by key would overwrite another member's row). A server
 * down now is not checked: sync parks its writes until it is back.
 */
async function describeAll(config: Config, logger: Logger): Promise<TableSpec[]> {
  const reader = createSourceReader(config, logger);
  try {
    const specs = await describeTables(reader, config);
    await planShardTables(config, shardMapFromConfig(config), specs, { tolerateUnreachable: isTransient });
    return specs;
  } finally {
    await reader.close();
  }
}

