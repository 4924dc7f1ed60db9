import type { TableConfig } from '../config/schema.js';
import { RefusedError } from '../errors.js';

/**
 * A table's config against its source columns and primary key, the same for every source: refused
 * (exit 2, before any write) naming the table (`where`) and the column. The type rules (which
 * columns can be keyed, paged or sharded by) are each source's own.
 */
export function checkTableConfig(name: string, where: string, table: TableConfig, columns: ReadonlySet<string>, primaryKey: readonly string[]): void {
  // Each refusal ends with the config key to change, as the config's own errors name their YAML path.
  const refuse = (message: string, key?: string): never => {
    throw new RefusedError(`${where}: ${message}${key ? ` (config: tables.${name}.${key})` : ''}`);
  };
  for (const excluded of table.exclude_columns) {
    if (!columns.has(excluded)) refuse(`exclude_columns names ${excluded}, which is not a column of the source table`, 'exclude_columns');
  }
  if (!columns.has(table.shard_key)) refuse(`shard key column ${table.shard_key} is not a column of the source table`, 'shard_key');
  if (table.updated_at !== undefined && (!columns.has(table.updated_at) || table.exclude_columns.includes(table.updated_at))) {
    refuse(`updated_at column ${table.updated_at} is not a column copied from the source table`, 'updated_at');
  }
  if (primaryKey.length === 0) refuse('the source table has no primary key (keyset chunks and idempotent writes need one)');
  for (const column of new Set([...primaryKey, table.shard_key])) {
    if (table.exclude_columns.includes(column)) refuse(`${primaryKey.includes(column) ? 'primary' : 'shard'} key column ${column} cannot be excluded`, 'exclude_columns');
  }
  for (const column of Object.keys(table.columns ?? {})) {
    if (!columns.has(column)) refuse(`columns names ${column}, which is not a column of the source table`, `columns.${column}`);
    if (table.exclude_columns.includes(column)) refuse(`columns renames ${column}, which exclude_columns leaves out`, `columns.${column}`);
  }
  // MySQL column names are case-insensitive: two columns may not become one.
  const targets = new Map<string, string>();
  for (const column of columns) {
    if (table.exclude_columns.includes(column)) continue;
    const target = targetColumnName(table, column);
    const clash = targets.get(target.toLowerCase());
    if (clash !== undefined) refuse(`columns ${clash} and ${column} would both be column ${target} in the shard tables`, 'columns');
    targets.set(target.toLowerCase(), column);
  }
}

/** A source column's name in the shard tables: its own, or the one `columns` gives it. */
export function targetColumnName(table: Pick<TableConfig, 'columns'>, source: string): string {
  return table.columns?.[source]?.target ?? source;
}
