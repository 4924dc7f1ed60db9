import type { Logger } from '../log.js';
import { valueText } from '../rows/convert.js';
import type { RowValue, TableSpec } from '../rows/types.js';
import type { ShardWriter } from '../target/writer.js';

/** Keys named in one warning (of one shard's batch); the count is always whole. */
const KEYS_LOGGED = 20;

/** A delete as written: its key, and its bound (DeleteOptions.notNewerThan) where it had one. */
export interface WrittenDelete {
  key: RowValue[];
  notNewerThan?: RowValue;
}

/**
 * Says which bounded deletes of a shard kept their row (the shard holds it with a newer updated_at
 * than the delete's before image): a late event, or a legacy writer whose clock runs behind the
 * row's writer, when legacy has deleted a row the shard keeps. Never in silence: logged with the
 * keys, and `onKept` counts them. Called once the deletes are written, outside their retries (so
 * none is counted twice) and best effort: a failed look is logged, the writes stand.
 */
export async function reportKeptDeletes(
  o: { writer: ShardWriter; logger: Logger; onKept?: (table: string, count: number) => void },
  shard: number,
  spec: TableSpec,
  deletes: WrittenDelete[],
): Promise<void> {
  const bounded = deletes.filter((d): d is WrittenDelete & { notNewerThan: RowValue } => d.notNewerThan !== undefined && d.notNewerThan !== null);
  if (bounded.length === 0) return;
  try {
    const kept = await o.writer.keysKeptNewer(shard, spec, bounded.map((d) => d.key), bounded.map((d) => d.notNewerThan));
    if (kept.length === 0) return;
    o.onKept?.(spec.name, kept.length);
    o.logger.warn(
      { table: spec.name, shard, kept: kept.length, keyColumns: spec.primaryKey, keys: kept.slice(0, KEYS_LOGGED).map((k) => k.map(valueText)) },
      `a delete kept a row the shard holds with a newer ${spec.updatedAt} than the delete's before image (a late event, or a writer whose clock runs behind legacy's); if legacy has no such row, verify reports it and verify --repair removes it`,
    );
  } catch (e) {
    o.logger.warn({ table: spec.name, shard, err: (e as Error).message }, 'could not look whether deletes kept newer rows');
  }
}
