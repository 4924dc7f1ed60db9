import type { RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { RefusedError } from '../errors.js';
import { connectMysql } from '../mysql/connect.js';
import { integerRange, isIntegerDataType } from '../rows/mysql.js';
import { shardMapFromConfig } from '../shard/map.js';
import { targetColumnName } from '../source/table-config.js';

/**
 * Member ids typed by an operator (`gray check`, `gray set --allow/--deny`) are hashed and listed
 * as text, exactly as the service's ids are: an integer key's member 123 is the text "123". So
 * "0123", "+123" or "1e3" would name nobody the service ever sends, and a check of it would answer
 * for a member that does not exist. The shard key's column type is read from the shard table
 * (the one `init` made from the source), on the server of shard 0.
 */

/** An integer as the service's ids print it: no sign but '-', no leading zero, no spaces. */
const CANONICAL_INTEGER = /^(0|-?[1-9][0-9]*)$/;

export interface ShardKeyColumn {
  column: string;
  /** information_schema DATA_TYPE, e.g. bigint, varchar. */
  dataType: string;
  integer: boolean;
  /** Integer keys: UNSIGNED. */
  unsigned: boolean;
}

/** The ids (canonical integers) the column cannot hold: no member has them. */
export function outOfRangeIds(ids: readonly string[], key: Pick<ShardKeyColumn, 'dataType' | 'unsigned'>): string[] {
  const { min, max } = integerRange(key.dataType, key.unsigned);
  return ids.filter((id) => BigInt(id) < min || BigInt(id) > max);
}

/** The shard key column of a table as the shards hold it; null (with why) when it cannot be read now. */
export async function readShardKeyColumn(config: Config, table: string): Promise<ShardKeyColumn | { unknown: string }> {
  const spec = config.tables[table]!;
  // The shard table's name for it (tables.NAME.columns may rename it): the legacy name found nothing there.
  const column = targetColumnName(spec, spec.shard_key);
  const map = shardMapFromConfig(config);
  const server = map.serverOf(0);
  const database = map.databaseOf(0);
  const settings = config.servers[server.name]!;
  try {
    const conn = await connectMysql(settings.primary, { database: undefined, connectTimeout: 5000 }, settings.tls);
    try {
      const [rows] = await conn.query<RowDataPacket[]>(
        'SELECT DATA_TYPE AS t, COLUMN_TYPE AS ct FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?',
        [database, spec.target, column],
      );
      if (!rows[0]) return { unknown: `${database}.${spec.target}.${column} not found on server ${server.name} (run membermig init)` };
      const dataType = String(rows[0].t).toLowerCase();
      return { column, dataType, integer: isIntegerDataType(dataType), unsigned: /\bunsigned\b/i.test(String(rows[0].ct)) };
    } finally {
      await conn.end();
    }
  } catch (e) {
    return { unknown: `server ${server.name} could not be asked (${(e as Error).message})` };
  }
}

/** The ids among `ids` that no integer key can have in the service's text form. */
export function nonCanonicalIds(ids: readonly string[]): string[] {
  return ids.filter((id) => !CANONICAL_INTEGER.test(id));
}

/** The ids to list or check, as the service sends them, and notes for the result. */
export interface MemberIds {
  ids: string[];
  notes: string[];
}

/**
 * The ids as the service sends them. A text key takes each id exactly as typed (" vip" and "vip"
 * are two members); an integer key takes plain digits, spaces around them dropped ("1, 2"), and
 * refuses anything else, naming the column and its type. When the key's type cannot be read, the
 * ids go through (a rollback or a deny list must not wait for a shard server) with a note, spaces
 * dropped only around plain digits.
 */
export async function memberIdsAsSent(config: Config, table: string, typed: readonly string[]): Promise<MemberIds> {
  if (typed.length === 0) return { ids: [], notes: [] };
  const key = await readShardKeyColumn(config, table);
  if ('unknown' in key) {
    return { ids: typed.map((id) => (CANONICAL_INTEGER.test(id.trim()) ? id.trim() : id)), notes: [`member ids not checked against the shard key's type: ${key.unknown}`] };
  }
  if (!key.integer) return { ids: [...typed], notes: [] };
  const ids = typed.map((id) => id.trim());
  const bad = nonCanonicalIds(ids);
  if (bad.length > 0) {
    throw new RefusedError(
      `member id ${listIds(bad)} is not an integer as the service sends it: ${table}.${key.column} is ${key.dataType}, so write it in plain digits (e.g. 123, not 0123 or +123)`,
    );
  }
  const outside = outOfRangeIds(ids, key);
  if (outside.length > 0) {
    const { min, max } = integerRange(key.dataType, key.unsigned);
    const type = `${key.dataType}${key.unsigned ? ' unsigned' : ''}`;
    throw new RefusedError(`member id ${listIds(outside)} is outside ${table}.${key.column}'s range (${type}: ${min} to ${max}): no member has it`);
  }
  return { ids, notes: [] };
}

function listIds(ids: string[]): string {
  return ids.slice(0, 5).map((id) => JSON.stringify(id)).join(', ') + (ids.length > 5 ? ` and ${ids.length - 5} more` : '');
}
