import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../src/mysql/connect.js';
import { runCli } from './support/cli.js';
import { createCopyEnv, writeConfig } from './support/copy-env.js';
import type { TestEnv } from './support/env.js';
import { createMemberTable } from './support/nasty.js';
import { shardMapFromConfig } from '../src/shard/map.js';

async function count(url: string, sql: string): Promise<number> {
  const conn = await connectMysql(url);
  try {
    const [rows] = await conn.query(sql);
    return Number((rows as { n: number | string }[])[0]!.n);
  } finally {
    await conn.end();
  }
}

describe('membermig full refuses bad input before any write (exit 2, table and column named)', () => {
  let env: TestEnv;
  const variant = (name: string, table: Record<string, unknown>): string => {
    const saved = env.raw;
    env.raw = { ...env.raw, tables: { [name]: table } };
    const path = writeConfig(env, env.configPath.replace(/\.yaml$/, `-${name}.yaml`));
    env.raw = saved;
    return path;
  };
  const nothingWritten = async () => {
    expect(await count(env.config.control.url, 'SELECT COUNT(*) AS n FROM jobs')).toBe(0);
    expect(await count(env.urls.shardA, `SELECT COUNT(*) AS n FROM \`${env.prefix}_s000\`.member`)).toBe(0);
  };

  beforeAll(async () => {
    env = await createCopyEnv({ shardCount: 4, tables: (db) => ({ member: { source: `${db}.member`, target: 'member', shard_key: 'member_id' } }) });
    await createMemberTable(env.legacyUrl, 20);
    const conn = await connectMysql(env.legacyUrl);
    await conn.query('CREATE TABLE keyless (member_id BIGINT NOT NULL, name VARCHAR(10))');
    await conn.query('CREATE TABLE text_key (code TEXT NOT NULL, member_id BIGINT NOT NULL, PRIMARY KEY (code(10)))');
    await conn.query('CREATE TABLE versioned (member_id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(10)) WITH SYSTEM VERSIONING');
    await conn.end();
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
  });
  afterAll(async () => env?.cleanup());

  it('a table missing in the source', async () => {
    const path = variant('ghost', { source: `${env.legacyDb}.ghost`, target: 'ghost', shard_key: 'member_id' });
    const res = await runCli(['full', '--config', path]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`table ghost (source ${env.legacyDb}.ghost): the source table does not exist (config: tables.ghost.source)`);
    const init = await runCli(['init', '--config', path]);
    expect(init.code).toBe(2);
    await nothingWritten();
  });

  it('a shard server that refuses the login is named (the driver names only the user)', async () => {
    const saved = env.raw;
    const servers = saved.servers as Record<string, { primary: string }>;
    const wrong = Object.assign(new URL(servers['shard-b']!.primary), { username: 'nobody_here', password: 'wrong-pw-77' }).toString();
    env.raw = { ...saved, servers: { ...servers, 'shard-b': { ...servers['shard-b'], primary: wrong } } };
    const path = writeConfig(env, env.configPath.replace(/\.yaml$/, '-login.yaml'));
    env.raw = saved;
    const res = await runCli(['full', '--config', path, '--json']);
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout).error).toMatch(/^shard server shard-b: Access denied for user 'nobody_here'/);
    expect(res.stdout + res.stderr).not.toContain('wrong-pw-77');
    await nothingWritten();
  });

  it('a shard key column missing', async () => {
    const path = variant('member', { source: `${env.legacyDb}.member`, target: 'member', shard_key: 'user_id' });
    const res = await runCli(['full', '--config', path]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('table member');
    expect(res.stderr).toContain('shard key column user_id is not a column of the source table (config: tables.member.shard_key)');
    await nothingWritten();
  });

  it('an updated_at column the source table does not have (verify --since would fail every chunk)', async () => {
    const path = variant('member', { source: `${env.legacyDb}.member`, target: 'member', shard_key: 'member_id', updated_at: 'nope' });
    for (const args of [['full'], ['verify', '--since', '2h'], ['init']]) {
      const res = await runCli([...args, '--config', path]);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).toContain(`table member (source ${env.legacyDb}.member): updated_at column nope is not a column copied from the source table`);
    }
    await nothingWritten();
  });

  it('a primary key absent', async () => {
    const path = variant('keyless', { source: `${env.legacyDb}.keyless`, target: 'keyless', shard_key: 'member_id' });
    const res = await runCli(['full', '--config', path]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('table keyless');
    expect(res.stderr).toContain('has no primary key');
    await nothingWritten();
  });

  it('flags that select nothing or no real time are refused (exit 2) before any job: --tables ",", --watch 0, --since 2026-02-30', async () => {
    for (const args of [
      ['full', '--tables', ','],
      ['verify', '--tables', ','],
      ['verify', '--tables', ''],
      ['verify', '--watch', '0'],
      ['verify', '--since', '2026-02-30T00:00:00Z'],
      ['verify', '--since', '2026-11-31 00:00:00'],
    ]) {
      const res = await runCli([...args, '--config', env.configPath, '--json']);
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(2);
      expect(JSON.parse(res.stdout).ok).toBe(false);
    }
    await nothingWritten();
  });

  it('a TEXT primary key indexed by a prefix (no shard table can key the whole column): init and full refuse', async () => {
    const path = variant('text_key', { source: `${env.legacyDb}.text_key`, target: 'text_key', shard_key: 'member_id' });
    for (const command of ['init', 'full']) {
      const res = await runCli([command, '--config', path]);
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toContain(`table text_key (source ${env.legacyDb}.text_key): primary key column code is TEXT, keyed by a prefix only (code(10))`);
    }
    expect(await count(env.urls.shardA, `SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${env.prefix}_s000' AND TABLE_NAME = 'text_key'`)).toBe(0);
    await nothingWritten();
  });

  it('a SYSTEM VERSIONED table (Debezium streams none of its changes): init and full refuse', async () => {
    const path = variant('versioned', { source: `${env.legacyDb}.versioned`, target: 'versioned', shard_key: 'member_id' });
    for (const command of ['init', 'full']) {
      const res = await runCli([command, '--config', path]);
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toContain(`table versioned (source ${env.legacyDb}.versioned): the source table is SYSTEM VERSIONED`);
    }
    await nothingWritten();
  });

  it('a shard table with a UNIQUE index besides the primary key (REPLACE would delete the other row): full and init refuse', async () => {
    const b = await connectMysql(env.urls.shardB);
    // uq_nick can hit another member's row; uq_own holds the whole primary key, so it cannot.
    await b.query(`ALTER TABLE \`${env.prefix}_s002\`.member ADD UNIQUE KEY uq_nick (nick), ADD UNIQUE KEY uq_own (member_id, nick)`);
    try {
      const res = await runCli(['full', '--config', env.configPath]);
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toContain(`table member: shard table ${env.prefix}_s002.member on server shard-b has UNIQUE index uq_nick (nick)`);
      expect(res.stderr).toContain("REPLACE/upsert by primary key would delete or overwrite another member's row");
      expect(res.stderr).toContain('make it a plain index');
      expect(res.stderr).not.toContain('uq_own');
      const init = await runCli(['init', '--config', env.configPath]);
      expect(init.code).toBe(2);
      expect(init.stderr).toContain('UNIQUE index uq_nick (nick)');
      await nothingWritten();
      expect(await count(env.urls.shardB, `SELECT COUNT(*) AS n FROM \`${env.prefix}_s002\`.member`)).toBe(0);
    } finally {
      await b.query(`ALTER TABLE \`${env.prefix}_s002\`.member DROP INDEX uq_nick, DROP INDEX uq_own`);
      await b.end();
    }
  });

  it('a shard table that is not InnoDB (no transactions, not crash-safe): init --check, full and verify --repair refuse', async () => {
    const a = await connectMysql(env.urls.shardA);
    await a.query(`ALTER TABLE \`${env.prefix}_s001\`.member ENGINE=MyISAM`);
    try {
      for (const command of [['init', '--check'], ['full'], ['verify', '--repair']]) {
        const res = await runCli([...command, '--config', env.configPath]);
        expect(res.code, `${command.join(' ')}: ${res.stderr}`).toBe(2);
        expect(res.stderr).toContain(`table member: shard table ${env.prefix}_s001.member on server shard-a uses engine MyISAM, expected InnoDB`);
        expect(res.stderr).toContain(`ALTER TABLE \`${env.prefix}_s001\`.\`member\` ENGINE=InnoDB`);
      }
      await nothingWritten();
    } finally {
      await a.query(`ALTER TABLE \`${env.prefix}_s001\`.member ENGINE=InnoDB`);
      await a.end();
    }
  });

  it('a shard table with a different shape than the pipeline writes (full and init both refuse)', async () => {
    const b = await connectMysql(env.urls.shardB);
    await b.query(`ALTER TABLE \`${env.prefix}_s003\`.member MODIFY points INT NOT NULL`);
    await b.end();
    const res = await runCli(['full', '--config', env.configPath]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`table member: shard table ${env.prefix}_s003.member on server shard-b column points is int(11), expected bigint`);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code).toBe(2);
    expect(init.stderr).toContain('column points');
    await nothingWritten();
  });
});

describe('values the target cannot hold: rows.on_unrepresentable', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: 4,
      tables: (db) => ({ odd: { source: `${db}.odd`, target: 'odd', shard_key: 'id' } }),
      extra: { copy: { chunk_rows: 4, workers: 1 } },
    });
    const conn = await connectMysql(env.legacyUrl);
    await conn.query('CREATE TABLE odd (id INT PRIMARY KEY, code VARCHAR(8) CHARACTER SET ascii NULL, city VARCHAR(8) CHARACTER SET gbk NULL)');
    // An ascii column can hold a byte that is not ASCII; no utf8mb4 text equals it.
    await conn.query("SET sql_mode = ''");
    await conn.query("INSERT INTO odd VALUES (1, 'A1', '北京'), (2, X'E9', '上海'), (3, NULL, NULL), (4, '', ''), (5, 'Z', '广州')");
    await conn.end();
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
  });
  afterAll(async () => env?.cleanup());

  it('fail (the default): stops with exit 1 naming table, key, column and reason', async () => {
    const res = await runCli(['full', '--config', env.configPath, '--json']);
    expect(res.code).toBe(1);
    const r = JSON.parse(res.stdout).result;
    expect(r.state).toBe('incomplete');
    expect(r.errors[0]).toContain('table odd, key (2), column code');
    expect(r.errors[0]).toContain('not valid ascii');
  });

  it('record: writes every other row, records the value in rejected_values, exits 1', async () => {
    env.raw = { ...env.raw, rows: { on_unrepresentable: 'record' } };
    writeConfig(env);
    const res = await runCli(['full', '--config', env.configPath, '--json']);
    expect(res.code).toBe(1);
    const r = JSON.parse(res.stdout).result;
    expect(r.state).toBe('done');
    expect(r.rejectedValues).toBe(1);
    const control = await connectMysql(env.config.control.url);
    const [rows] = await control.query('SELECT table_name, pk, column_name, value, reason FROM rejected_values');
    await control.end();
    const rejected = rows as { table_name: string; pk: string; column_name: string; value: string; reason: string }[];
    expect(rejected.map((x) => [x.table_name, typeof x.pk === 'string' ? JSON.parse(x.pk) : x.pk, x.column_name, x.value])).toEqual([['odd', ['2'], 'code', '0xE9']]);
    let copied = 0;
    for (const [url, shards] of [[env.urls.shardA, [0, 1]], [env.urls.shardB, [2, 3]]] as const) {
      for (const s of shards) copied += await count(url, `SELECT COUNT(*) AS n FROM \`${env.prefix}_s00${s}\`.odd`);
    }
    expect(copied).toBe(4);
  });

  it('verify --repair never deletes the copy of a row whose legacy value became unrepresentable: kind unrepresentable, kept', async () => {
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query("SET sql_mode = ''");
    await legacy.query("UPDATE odd SET code = X'E9' WHERE id = 5"); // copied as 'Z' before
    await legacy.end();
    const control = await connectMysql(env.config.control.url);
    await control.query("INSERT INTO repair_queue (table_name, pk, reason, origin) VALUES ('odd', '[\"5\"]', 'dual write failed', 'shim')");
    const res = await runCli(['verify', '--config', env.configPath, '--json', '--repair']);
    expect(res.code, res.stderr).toBe(1);
    const r = JSON.parse(res.stdout).result;
    const diffs = (r.differences as { key: string[]; kind: string; reason?: string; repairAction: string | null }[]).map((d) => [d.key[0], d.kind, d.repairAction]);
    expect(diffs.sort()).toEqual([
      ['2', 'unrepresentable', 'keep'],
      ['5', 'unrepresentable', 'keep'],
    ]);
    expect(r.differences[0].reason).toContain('column code');
    expect(r.repairQueue).toEqual([{ table: 'odd', entries: 1, resolved: 0, left: 1, legacyBehind: 0, unrepresentable: 1, malformed: 0, problems: [] }]);
    const [stored] = await control.query('SELECT kind, reason FROM verify_diffs WHERE kind = ? ORDER BY id DESC LIMIT 1', ['unrepresentable']);
    await control.end();
    expect((stored as { reason: string }[])[0]!.reason).toContain('not valid ascii');
    // Row 5's copy is still there, as it was; nothing else was written or deleted.
    let copied = 0;
    for (const [url, shards] of [[env.urls.shardA, [0, 1]], [env.urls.shardB, [2, 3]]] as const) {
      for (const s of shards) copied += await count(url, `SELECT COUNT(*) AS n FROM \`${env.prefix}_s00${s}\`.odd WHERE id = 5 AND code = 'Z'`);
    }
    expect(copied).toBe(1);
  });
});

describe("ENUM's error value in an ENUM that also has a '' member", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: 2,
      tables: (db) => ({ pick: { source: `${db}.pick`, target: 'pick', shard_key: 'id' } }),
      extra: { rows: { on_unrepresentable: 'record' }, verify: { recheck_after_seconds: 0 } },
    });
    const conn = await connectMysql(env.legacyUrl);
    await conn.query("CREATE TABLE pick (id INT PRIMARY KEY, e ENUM('', 'a') NULL)");
    // 'bad' is no member: a non-strict insert stores the error value (index 0), which prints as '' like the real '' (index 1).
    await conn.query("SET sql_mode = ''");
    await conn.query("INSERT INTO pick VALUES (1, 'bad'), (2, ''), (3, 'a'), (4, NULL)");
    const [indexes] = await conn.query('SELECT id, e + 0 AS i FROM pick ORDER BY id');
    expect((indexes as { i: number | null }[]).map((r) => r.i)).toEqual([0, 1, 2, null]);
    await conn.end();
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
  });
  afterAll(async () => env?.cleanup());

  for (const method of ['load', 'insert'] as const) {
    it(`full (${method}) flags it and writes every other row`, async () => {
      env.raw = { ...env.raw, copy: { ...((env.raw.copy as object) ?? {}), method } };
      writeConfig(env);
      const res = await runCli(['full', '--config', env.configPath, '--json', '--restart']);
      expect(res.code).toBe(1);
      expect(JSON.parse(res.stdout).result).toMatchObject({ state: 'done', rejectedValues: 1 });
      const rows: unknown[] = [];
      for (const [url, s] of [[env.urls.shardA, 0], [env.urls.shardB, 1]] as const) {
        const conn = await connectMysql(url);
        const [r] = await conn.query(`SELECT id, e FROM \`${env.prefix}_s00${s}\`.pick`);
        await conn.end();
        rows.push(...(r as unknown[]));
      }
      expect(rows.sort((a, b) => (a as { id: number }).id - (b as { id: number }).id)).toEqual([{ id: 2, e: '' }, { id: 3, e: 'a' }, { id: 4, e: null }]);
    });
  }

  it("verify never calls it equal to a shard's real ''", async () => {
    const map = shardMapFromConfig(env.config);
    const shard = map.shardOf('1');
    const conn = await connectMysql(shard < 1 ? env.urls.shardA : env.urls.shardB);
    await conn.query(`INSERT INTO \`${map.databaseOf(shard)}\`.pick VALUES (1, '')`);
    await conn.end();
    const res = await runCli(['verify', '--config', env.configPath, '--json']);
    expect(res.code, res.stdout).toBe(1);
    expect(JSON.parse(res.stdout).result.differences.map((d: { key: string[] }) => d.key[0])).toEqual(['1']);
  });
});
