import type { Config } from '../../src/config/schema.js';
import { connectMysql, quoteId } from '../../src/mysql/connect.js';
import { shardMapFromConfig } from '../../src/shard/map.js';
import type { TestEnv } from './env.js';

export interface RowComparison {
  legacyRows: number;
  shardRows: number;
  /** One line per missing, extra, different, duplicated or misplaced row. */
  differences: string[];
}

const asText = (v: unknown): string | null => (v === null || v === undefined ? null : Buffer.isBuffer(v) ? `0x${v.toString('hex')}` : String(v));

/**
 * Every row of a legacy table against every row of its shards, value by value (as text, binary as
 * hex): each legacy row must be in the shard the map routes it to, once, with equal values, and no
 * shard may hold an extra row. Every identifier is quoted (tables and columns may be odd).
 */
export async function compareTable(config: Config, legacyUrl: string, sourceTable: string, target: string, keyColumns: string[], shardKey: string): Promise<RowComparison> {
  const keyOf = (row: Record<string, unknown>): string => JSON.stringify(keyColumns.map((k) => asText(row[k])));
  const rowText = (row: Record<string, unknown>): string => JSON.stringify(Object.entries(row).map(([k, v]) => [k, asText(v)]));
  const expected = new Map<string, string>();
  const legacy = await connectMysql(legacyUrl);
  try {
    const [rows] = await legacy.query(`SELECT * FROM ${quoteId(sourceTable)}`);
    for (const r of rows as Record<string, unknown>[]) expected.set(keyOf(r), rowText(r));
  } finally {
    await legacy.end();
  }
  const map = shardMapFromConfig(config);
  const differences: string[] = [];
  const seen = new Set<string>();
  let shardRows = 0;
  for (const server of map.servers()) {
    const conn = await connectMysql(server.primary);
    try {
      for (const shard of map.shardsOn(server.name)) {
        const [rows] = await conn.query(`SELECT * FROM ${quoteId(map.databaseOf(shard))}.${quoteId(target)}`);
        for (const r of rows as Record<string, unknown>[]) {
          shardRows++;
          const key = keyOf(r);
          const want = expected.get(key);
          if (want === undefined) differences.push(`extra ${key} in shard ${shard}`);
          else if (want !== rowText(r)) differences.push(`different ${key} in shard ${shard}: legacy ${want} shard ${rowText(r)}`);
          const home = map.shardOf(asText(r[shardKey])!);
          if (home !== shard) differences.push(`${key} in shard ${shard}, belongs in ${home}`);
          if (seen.has(key)) differences.push(`${key} is in more than one shard`);
          seen.add(key);
        }
      }
    } finally {
      await conn.end();
    }
  }
  for (const key of expected.keys()) if (!seen.has(key)) differences.push(`missing ${key}`);
  return { legacyRows: expected.size, shardRows, differences };
}

/** A legacy stand-in table against the shard tables of the same name (single-column key). */
export function compareWithLegacy(env: TestEnv, table: string, options: { key: string; shardKey: string }): Promise<RowComparison> {
  return compareTable(env.config, env.legacyUrl, table, table, [options.key], options.shardKey);
}
