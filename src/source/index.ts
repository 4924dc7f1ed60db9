import type { Config } from '../config/schema.js';
import { RefusedError } from '../errors.js';
import type { Logger } from '../log.js';
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
    specs.push(await reader.describeTable(name, table));
  }
  return specs;
}
