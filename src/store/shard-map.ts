import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { RefusedError } from '../errors.js';
import { isoTime } from '../mysql/iso-time.js';
import { formatDatabaseName } from '../shard/map.js';

/**
 * The shard map's routing (count, function, database pattern) is pinned in the control store by
 * the first command that uses it: the shards hold rows placed by it, and a config that routes
 * otherwise would send copies, sync, verify and the shim to shards that do not hold the rows
 * (a copy "done" over the old one, verify finding nearly every row misplaced). Placement, which
 * server holds a shard, is not pinned: shards move between servers.
 */

type Routing = Pick<Config['shards'], 'count' | 'function' | 'database'>;

/** Records the routing if none is recorded yet; refuses (exit 2) a config whose routing differs from the recorded one. */
export async function pinShardMap(store: { pool: Pool | PoolConnection; database: string }, shards: Routing): Promise<void> {
  await store.pool.query('INSERT IGNORE INTO shard_map (id, shard_count, shard_function, database_pattern) VALUES (1, ?, ?, ?)', [shards.count, shards.function, shards.database]);
  await checkShardMap(store, shards);
}

/** Refuses a config whose routing differs from the recorded one; changes nothing (init --check). A store without one passes. */
export async function checkShardMap(store: { pool: Pool | PoolConnection; database: string }, shards: Routing): Promise<void> {
  let rows: RowDataPacket[];
  try {
    [rows] = await store.pool.query<RowDataPacket[]>(`SELECT shard_count, shard_function, database_pattern, ${isoTime('recorded_at')} FROM shard_map WHERE id = 1`);
  } catch (e) {
    // No control store or none migrated this far yet: nothing recorded.
    if (['ER_BAD_DB_ERROR', 'ER_NO_SUCH_TABLE'].includes((e as { code?: string }).code ?? '')) return;
    throw e;
  }
  const row = rows[0];
  if (!row) return;
  const recorded: Routing = { count: Number(row.shard_count), function: row.shard_function as Routing['function'], database: String(row.database_pattern) };
  const differences = routingDifferences(recorded, shards);
  if (differences.length === 0) return;
  throw new RefusedError(
    `the config's shard map is not the one the control store ${store.database} has placed rows by (recorded ${String(row.recorded_at)}): ${differences.join('; ')}. ` +
      'The shards hold rows placed by the recorded map: put it back in the config. A new map needs a new copy into new shard databases, with a new control store (control.url).',
  );
}

/** What differs, in words; empty when both route every key to the same database. */
export function routingDifferences(recorded: Routing, config: Routing): string[] {
  const out: string[] = [];
  if (recorded.count !== config.count) out.push(`shards.count is ${config.count}, recorded ${recorded.count}`);
  if (recorded.function !== config.function) out.push(`shards.function is ${config.function}, recorded ${recorded.function}`);
  // Patterns that name the same databases ({shard:2} and {shard:02}, say) are the same map.
  if (!sameDatabases(recorded.database, config.database, Math.min(recorded.count, config.count))) out.push(`shards.database is "${config.database}", recorded "${recorded.database}"`);
  return out;
}

function sameDatabases(a: string, b: string, count: number): boolean {
  for (let shard = 0; shard < count; shard++) if (formatDatabaseName(a, shard) !== formatDatabaseName(b, shard)) return false;
  return true;
}
