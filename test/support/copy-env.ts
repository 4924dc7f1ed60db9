import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/index.js';
import { createShardWriter, type ShardWriter } from '../../src/target/writer.js';
import { runCli } from './cli.js';
import { createTestEnv, type TestEnv, type TestEnvOptions } from './env.js';
import { createMemberTable } from './nasty.js';

type Tables = Record<string, { source: string; target: string; shard_key: string } & Record<string, unknown>>;

/** A test env whose tables live in its own legacy database (whose name is only known once created). */
export async function createCopyEnv(options: Omit<TestEnvOptions, 'tables'> & { tables: (legacyDb: string) => Tables }): Promise<TestEnv> {
  const { tables, ...rest } = options;
  const env = await createTestEnv(rest);
  env.raw = { ...env.raw, tables: tables(env.legacyDb) };
  writeConfig(env);
  return env;
}

/** Writes env.raw to env.configPath again (after a test changed it) and re-parses env.config. */
export function writeConfig(env: TestEnv, path = env.configPath): string {
  const text = stringify(env.raw);
  writeFileSync(path, text);
  if (path === env.configPath) env.config = parseConfig(text, path);
  return path;
}

export const memberTables = (db: string): Tables => ({
  member: { source: `${db}.member`, target: 'member', shard_key: 'member_id' },
  member_tag: { source: `${db}.member_tag`, target: 'member_tag', shard_key: 'member_id' },
});

/**
 * A member table of `rows` rows already copied to 4 shards (init, then full): where the restart
 * tests begin. The writer reads the shards; close it and clean up the env after.
 */
export async function copiedMemberEnv(rows: number, copy: Record<string, unknown>): Promise<{ env: TestEnv; writer: ShardWriter }> {
  const env = await createTestEnv({ shardCount: 4, extra: { copy } });
  await createMemberTable(env.legacyUrl, rows);
  for (const args of [['init'], ['full']]) {
    const r = await runCli([...args, '--config', env.configPath]);
    if (r.code !== 0) throw new Error(`${args[0]} exited ${r.code}: ${r.stderr}`);
  }
  return { env, writer: createShardWriter(env.config) };
}
