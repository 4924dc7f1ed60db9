import type { RowValue } from '../rows/types.js';
import type { SourceReader } from '../source/reader.js';
import type { ChunkKey } from '../store/leases.js';
import { applyChanges, type ApplyContext } from './apply.js';
import type { ChangeEvent } from './types.js';

/**
 * Replaying a dead letter after a fix: its keys are copied again from the legacy side, rather
 * than its stored image applied. Later events of the same key may already be applied, and the
 * stored image would take the row back in time; legacy holds the row as of now, and the events
 * still to come apply on top of it in log order (the copy-then-replay argument of `full`).
 *
 * For each key: deleted from every shard the event says it was or was going to be (its before and
 * after shard keys), then the legacy row upserted where the shard map puts it now (or nothing, when
 * legacy no longer has the row). Returns why it could not, or null when the keys are in step.
 */
export async function recopyKeys(apply: ApplyContext, reader: SourceReader, events: ChangeEvent[]): Promise<string | null> {
  const redo: ChangeEvent[] = [];
  for (const [table, ofTable] of groupBy(events, (e) => e.table)) {
    const spec = apply.specs.get(table);
    if (!spec) return `table ${table} is not in the config`;
    const keys = [...new Map(ofTable.map((e) => [JSON.stringify(keyOf(spec.primaryKey, e)), keyOf(spec.primaryKey, e)])).values()];
    const { rows, rejected } = await reader.rowsByKey(spec, keys);
    if (rejected.length > 0) return rejected[0]!.message;
    const current = new Map(rows.map((row) => [JSON.stringify(spec.primaryKey.map((k) => text(row[spec.columns.findIndex((c) => c.source === k)]))), row]));
    for (const e of ofTable) {
      const key = keyOf(spec.primaryKey, e);
      const shardKeys = new Set([e.beforeShardKey, e.after?.[spec.shardKey], e.key[spec.shardKey]].filter((v): v is RowValue => v !== undefined && v !== null));
      for (const shardKey of shardKeys) redo.push({ table, op: 'delete', key: e.key, after: null, beforeShardKey: shardKey, origin: e.origin });
      const row = current.get(JSON.stringify(key));
      if (row) redo.push({ table, op: 'upsert', key: e.key, after: Object.fromEntries(spec.columns.map((c, i) => [c.source, row[i] ?? null])), origin: e.origin });
    }
  }
  const { failed } = await applyChanges(apply, redo);
  return failed[0]?.reason ?? null;
}

function keyOf(primaryKey: string[], e: ChangeEvent): ChunkKey {
  return primaryKey.map((k) => text(e.key[k]));
}

/** Key text as readers take it: bytes as hex. */
function text(v: RowValue | undefined): string {
  return Buffer.isBuffer(v) ? v.toString('hex') : String(v ?? '');
}

function groupBy<T>(items: T[], by: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) out.set(by(item), [...(out.get(by(item)) ?? []), item]);
  return out;
}
