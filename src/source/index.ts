import type { Config } from '../config/schema.js';
import { RefusedError } from '../errors.js';
import type { Logger } from '../log.js';
import { isIntegerDataType } from '../rows/mysql.js';
import type { TableSpec } from '../rows/types.js';
import { createMssqlReader } from './mssql/index.js';
import { MysqlSourceReader } from './mysql/reader.js';
import type { SourceReader } from './reader.js';

export * from './reader.js';
export { MysqlSourceReader, mysqlConversions } from './mysql/reader.js';

/** The legacy-side reader for the config's `source.kind`. */
export function createSourceReader(config: Config, logger: Logger): SourceReader {
  switch (config.source.kind) {
    case 'mysql':
      return new MysqlSourceReader(config, logger);
    case 'mssql':
      return createMssqlReader(config, logger);
  }
}

/** Describes every configured table (or the named ones) through the reader; refuses before any write. */
export async function describeTables(reader: SourceReader, config: Config, names: string[] = Object.keys(config.tables)) {
  const specs = [];
  for (const name of names) {
    const table = config.tables[name];
    if (!table) throw new RefusedError(`table ${name} is not in the config (tables: ${Object.keys(config.tables).join(', ')})`);
    const spec = await reader.describeTable(name, table);
    refuseModOfNonIntegerKey(config, spec);
    specs.push(spec);
  }
  return specs;
}

/**
 * `mod` routes k mod count over the key as an integer (design.md's shard functions). A text
 * column may hold any text: Node refuses 'abc' as a key while SQL's form reads it as 0, so copy
 * and verify would disagree on where such a row lives. Text keys take crc32 or murmur3.
 */
function refuseModOfNonIntegerKey(config: Config, spec: TableSpec): void {
  if (config.shards.function !== 'mod') return;
  const type = spec.columns.find((c) => c.source === spec.shardKey)!.sourceType;
  const integer = isIntegerDataType(type.dataType) || (['decimal', 'numeric'].includes(type.dataType.toLowerCase()) && type.scale === 0);
  if (integer) return;
  throw new RefusedError(
    `table ${spec.name}: shards.function mod takes integer shard keys, and shard key column ${spec.shardKey} is ${type.columnType ?? type.dataType}: use crc32 or murmur3, which hash the key's text (config: tables.${spec.name}.shard_key)`,
  );
}
