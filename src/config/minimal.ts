import { parseConfig } from './load.js';
import type { Config } from './schema.js';

/**
 * A valid config of one local server and one table over `shards` shards, with `extraYaml`
 * (top-level sections) appended: for unit tests of rules that derive from the config.
 */
export function minimalConfig(shards: number, extraYaml = ''): Config {
  return parseConfig(
    `control: { url: "mysql://root@127.0.0.1:3306/c" }
source: { kind: mysql, url: "mysql://root@127.0.0.1:3306/legacy" }
servers: { a: { primary: "mysql://root@127.0.0.1:3306" } }
shards: { count: ${shards}, function: crc32, database: "s_{shard}", placement: [{ shards: "0-${shards - 1}", server: a }] }
tables: { member: { source: legacy.member, target: member, shard_key: member_id } }
${extraYaml}`,
    'membermig.yaml',
  );
}
