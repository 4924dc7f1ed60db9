import { keyPositions, respellableKeyPositions } from '../rows/ddl.js';
import type { RowValue, TableSpec } from '../rows/types.js';
import type { SourceReader } from '../source/reader.js';
import type { ChunkKey } from '../store/leases.js';
import type { ChangeEvent } from './types.js';

/** What a redo needs of the legacy side: its rows by primary key, in target form. */
export type LegacyRows = Pick<SourceReader, 'rowsByKey'>;

/**
 * Events whose image is not to be trusted (a dead letter replayed after a fix, a value Debezium
 * could not decode, a delete of a key the shards may spell otherwise) become what legacy holds for
 * their keys now: for each event, a delete from every shard the event says its row was or was
 * going to be (its before and after shard keys), then the legacy row upserted where the shard map
 * puts it now (nothing, when legacy no longer has the row). Later events apply on top in log order
 * (the copy-then-replay argument of `full`), so the keys converge.
 *
 * Returns one list of events per input event, in order, or why legacy could not give the rows.
 */
export async function redoFromLegacy(specs: Map<string, TableSpec>, legacy: LegacyRows, events: ChangeEvent[]): Promise<ChangeEvent[][] | string> {
  const current = new Map<string, Map<string, RowValue[]>>();
  for (const [table, ofTable] of groupBy(events, (e) => e.table)) {
    const spec = specs.get(table);
    if (!spec) return `table ${table} is not in the config`;
    const keys = [...new Map(ofTable.map((e) => [JSON.stringify(keyOf(spec, e)), keyOf(spec, e)])).values()];
    const { rows, rejected } = await legacy.rowsByKey(spec, keys);
    if (rejected.length > 0) return rejected[0]!.message;
    const positions = keyPositions(spec);
    const byKey = new Map(rows.map((row) => [JSON.stringify(positions.map((i) => text(row[i]))), row]));
    // A key the legacy side spells otherwise now ('k1' asked, 'K1' held) is matched by its own read:
    // legacy's collation decides which row is its, as the shard's decides which row it replaces.
    if (respellableKeyPositions(spec).length > 0) {
      for (const key of keys) {
        const id = JSON.stringify(key);
        if (byKey.has(id)) continue;
        const own = await legacy.rowsByKey(spec, [key]);
        if (own.rejected.length > 0) return own.rejected[0]!.message;
        if (own.rows[0]) byKey.set(id, own.rows[0]);
      }
    }
    current.set(table, byKey);
  }
  return events.map((e) => {
    const spec = specs.get(e.table)!;
    const redo: ChangeEvent[] = [];
    const shardKeys = new Set([e.beforeShardKey, e.after?.[spec.shardKey], e.key[spec.shardKey]].filter((v): v is RowValue => v !== undefined && v !== null));
    for (const shardKey of shardKeys) redo.push({ table: e.table, op: 'delete', key: e.key, after: null, beforeShardKey: shardKey, origin: e.origin });
    const row = current.get(e.table)!.get(JSON.stringify(keyOf(spec, e)));
    if (row) redo.push({ table: e.table, op: 'upsert', key: e.key, after: Object.fromEntries(spec.columns.map((c, i) => [c.source, row[i] ?? null])), origin: e.origin });
    return redo;
  });
}

function keyOf(spec: TableSpec, e: ChangeEvent): ChunkKey {
  return spec.primaryKey.map((k) => text(e.key[k]));
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
