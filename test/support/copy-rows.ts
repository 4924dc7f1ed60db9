import { silentLogger } from '../../src/log.js';
import type { Config } from '../../src/config/schema.js';
import { shardKeyPosition } from '../../src/rows/ddl.js';
import type { Row } from '../../src/rows/types.js';
import { shardMapFromConfig } from '../../src/shard/map.js';
import { createSourceReader } from '../../src/source/index.js';
import { createShardWriter } from '../../src/target/writer.js';

/** Copies every row of a table from the legacy side into its shards (the row pipeline and the writer), for verify tests. */
export async function copyTable(config: Config, table: string): Promise<number> {
  const reader = createSourceReader(config, silentLogger);
  const writer = createShardWriter(config);
  const map = shardMapFromConfig(config);
  let rows = 0;
  try {
    const spec = await reader.describeTable(table, config.tables[table]!);
    const at = shardKeyPosition(spec);
    for await (const batch of reader.readRange(spec, null, null, 500)) {
      const byShard = new Map<number, Row[]>();
      for (const row of batch) {
        const shard = map.shardOf(String(row[at]));
        byShard.set(shard, [...(byShard.get(shard) ?? []), row]);
      }
      for (const [shard, list] of byShard) await writer.upsertRows(shard, spec, list);
      rows += batch.length;
    }
  } finally {
    await reader.close();
    await writer.close();
  }
  return rows;
}
