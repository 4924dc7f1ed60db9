import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig, type Config } from '../../src/config/index.js';
import { connectMysql } from '../../src/mysql/connect.js';

export interface TestUrls {
  legacy: string;
  shardA: string;
  shardB: string;
}

export interface TestEnv {
  /** Unique prefix of every database this env creates, so test files can run in parallel. */
  prefix: string;
  urls: TestUrls;
  /** Server URL + database, for the legacy stand-in database. */
  legacyUrl: string;
  legacyDb: string;
  configPath: string;
  config: Config;
  /** The YAML object written to configPath, to derive variants from. */
  raw: Record<string, unknown>;
  cleanup(): Promise<void>;
}

export interface TestEnvOptions {
  shardCount?: number;
  shardFunction?: 'mod' | 'crc32' | 'murmur3';
  tables?: Record<string, { source: string; target: string; shard_key: string } & Record<string, unknown>>;
  /** Extra top-level config sections (copy, verify, cdc, gray...). */
  extra?: Record<string, unknown>;
  /** Statements run in the legacy database before the env is returned, e.g. CREATE TABLE. */
  legacySql?: string[];
}

/** A table source written as `legacy.NAME` in test options names the env's own legacy database. */
function resolveLegacy(tables: NonNullable<TestEnvOptions['tables']>, legacyDb: string): NonNullable<TestEnvOptions['tables']> {
  return Object.fromEntries(
    Object.entries(tables).map(([name, t]) => [name, { ...t, source: t.source.replace(/^legacy\./, `${legacyDb}.`) }]),
  );
}

export function testUrls(): TestUrls {
  return inject('mysql');
}

function withDatabase(serverUrl: string, db: string): string {
  const u = new URL(serverUrl);
  u.pathname = '/' + db;
  return u.toString();
}

/**
 * A fresh config on the test servers: control store and legacy database on the legacy stand-in,
 * shards split across the two shard hosts. Every database name starts with a random prefix.
 */
export async function createTestEnv(options: TestEnvOptions = {}): Promise<TestEnv> {
  const urls = testUrls();
  const prefix = `mmt_${randomBytes(4).toString('hex')}`;
  const count = options.shardCount ?? 8;
  const half = Math.floor(count / 2);
  const legacyDb = `${prefix}_legacy`;
  const raw: Record<string, unknown> = {
    control: { url: withDatabase(urls.legacy, `${prefix}_control`) },
    source: { kind: 'mysql', url: withDatabase(urls.legacy, legacyDb) },
    servers: {
      'shard-a': { primary: urls.shardA, dc: 'dc1' },
      'shard-b': { primary: urls.shardB, dc: 'dc2' },
    },
    shards: {
      count,
      function: options.shardFunction ?? 'crc32',
      database: `${prefix}_s{shard:03}`,
      placement: [
        { shards: `0-${half - 1}`, server: 'shard-a' },
        { shards: `${half}-${count - 1}`, server: 'shard-b' },
      ],
    },
    tables: options.tables ? resolveLegacy(options.tables, legacyDb) : { member: { source: `${legacyDb}.member`, target: 'member', shard_key: 'member_id' } },
    ...options.extra,
  };
  const dir = mkdtempSync(join(tmpdir(), 'membermig-cfg-'));
  const configPath = join(dir, 'membermig.yaml');
  writeFileSync(configPath, stringify(raw));
  const config = parseConfig(stringify(raw), configPath);

  const legacy = await connectMysql(urls.legacy);
  await legacy.query(`CREATE DATABASE IF NOT EXISTS \`${legacyDb}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  await legacy.query(`USE \`${legacyDb}\``);
  for (const sql of options.legacySql ?? []) await legacy.query(sql);
  await legacy.end();

  return {
    prefix,
    urls,
    legacyUrl: withDatabase(urls.legacy, legacyDb),
    legacyDb,
    configPath,
    config,
    raw,
    cleanup: () => dropPrefixed(urls, prefix),
  };
}

/** Drops every database this env created, on every test server. */
export async function dropPrefixed(urls: TestUrls, prefix: string): Promise<void> {
  for (const url of new Set(Object.values(urls))) {
    const conn = await connectMysql(url);
    try {
      const [rows] = await conn.query('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${prefix}\\_%`]);
      for (const r of rows as { name: string }[]) await conn.query(`DROP DATABASE IF EXISTS \`${r.name}\``);
    } finally {
      await conn.end();
    }
  }
}

export { withDatabase };

/**
 * The gray and shim tests' env: a legacy member table and an address table keyed (member_id,
 * line_no), both sharded by member_id over `shardCount` shards.
 */
export function memberAndAddressEnv(shardCount: number): Promise<TestEnv> {
  return createTestEnv({
    shardCount,
    tables: {
      member: { source: 'legacy.member', target: 'member', shard_key: 'member_id' },
      address: { source: 'legacy.address', target: 'address', shard_key: 'member_id' },
    },
    legacySql: [
      'CREATE TABLE member (member_id BIGINT PRIMARY KEY, name VARCHAR(50) NULL)',
      'CREATE TABLE address (member_id BIGINT NOT NULL, line_no INT NOT NULL, city VARCHAR(50) NULL, PRIMARY KEY (member_id, line_no))',
    ],
  });
}
