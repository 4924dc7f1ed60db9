import type { RowValue } from '../rows/types.js';

/**
 * One change, decoded from any change source (Debezium through Kafka, or SQL Server CDC read
 * directly) into the row pipeline's target form. Both sources feed the same apply path.
 */
export interface ChangeEvent {
  /** Logical table name from the config. */
  table: string;
  op: 'upsert' | 'delete';
  /** Primary key values by source column name (target form). For a delete, the key to delete. */
  key: Record<string, RowValue>;
  /** The full after-image by source column name (target form); null for a delete. */
  after: Record<string, RowValue> | null;
  /** The before-image's shard-key value when known, so a shard-key change can delete the old copy. */
  beforeShardKey?: RowValue;
  /**
   * The before image's updated_at (the table's updated_at column, target form) when known, for a
   * delete and for an upsert that moves the row to another shard: the delete (of the old shard's
   * copy) then keeps a row stored with a newer one. A late delete (replayed, or legacy's event of a
   * dual write's delete) would otherwise remove a row created again since.
   */
  beforeUpdatedAt?: RowValue;
  /** Where it came from, for ordering, offsets and dead letters. */
  origin: ChangeOrigin;
  /** Source commit time in ms since the epoch, for lag in seconds. */
  sourceTsMs?: number;
  /**
   * Why this event's image cannot be trusted as it is: apply copies its key again from the legacy
   * side instead (src/cdc/recopy.ts), where the sync has a legacy reader.
   */
  recopy?: string;
}

export interface ChangeOrigin {
  /** Kafka topic, or SQL Server capture instance. */
  source: string;
  /** Kafka partition; absent for direct CDC. */
  partition?: number;
  /** Kafka offset as decimal text, or `lsn:seqval` hex for direct CDC. */
  offset: string;
  /**
   * SQL Server commit LSN (20 hex chars) where known: where the change came from, for people. No
   * per-row LSN guard reads it: one key's changes arrive in log order (Kafka partitions by key;
   * direct CDC reads in LSN order), Debezium's incremental snapshots drop rows changed during
   * their window, and a late replay is kept from passing a newer row by tables.NAME.updated_at.
   */
  commitLsn?: string;
}

/** An event that could not be decoded or applied: goes to dead_letters with its raw bytes. */
export interface PoisonEvent {
  origin: ChangeOrigin;
  table?: string;
  messageKey: Buffer | null;
  rawValue: Buffer | null;
  reason: string;
}
