import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFullCopy } from '../src/copy/index.js';
import { silentLogger } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import type { Row } from '../src/rows/types.js';
import { createShardWriter, type ShardWriter } from '../src/target/writer.js';
import { runCli } from './support/cli.js';
import type { TestEnv } from './support/env.js';
import { createCopyEnv, memberTables, writeConfig } from './support/copy-env.js';
import { createMemberTable, createTagTable, memberRow, tagRow } from './support/nasty.js';
import { readShards } from './support/shards.js';

const MEMBERS = 240;
const TAGS = 90;


/** Expected target values of a generated row: what the source holds, as text/Buffer/NULL. */
const asRow = (values: unknown[]): Row => values.map((v) => (v === null || v === undefined || Buffer.isBuffer(v) ? (v ?? null) : String(v))) as Row;

async function expectAllCopied(writer: ShardWriter): Promise<void> {
  const members = await readShards(writer, 'member');
  expect(members.size).toBe(MEMBERS);
  for (let i = 0; i < MEMBERS; i++) {
    const expected = asRow(memberRow(i));
    expect(members.get(expected[0] as string), `member ${i}`).toEqual(expected);
  }
  const tags = await readShards(writer, 'member_tag', 2);
  expect(tags.size).toBe(TAGS);
  for (let i = 0; i < TAGS; i++) {
    const expected = asRow(tagRow(i));
    expect(tags.get(`${expected[0]}|${expected[1]}`), `tag ${i}`).toEqual(expected);
  }
}

describe('membermig full: happy path over 8 shards on two servers', () => {
  let env: TestEnv;
  let writer: ShardWriter;
  beforeAll(async () => {
    env = await createCopyEnv({ shardCount: 8, tables: memberTables, extra: { copy: { chunk_rows: 37, batch_rows: 20, workers: 3 } } });
    await createMemberTable(env.legacyUrl, MEMBERS);
    await createTagTable(env.legacyUrl, TAGS);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    writer = createShardWriter(env.config);
  });
  afterAll(async () => {
    await writer?.close();
    await env?.cleanup();
  });

  it('--dry-run shows chunks, shards and servers and writes nothing', async () => {
    const res = await runCli(['full', '--config', env.configPath, '--dry-run', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout).result;
    expect(r.state).toBe('planned');
    expect(r.plan.tables.map((t: { table: string; chunks: number }) => [t.table, t.chunks])).toEqual([
      ['member', Math.ceil(MEMBERS / 37) + (MEMBERS % 37 === 0 ? 1 : 0)],
      ['member_tag', Math.ceil(TAGS / 37)],
    ]);
    expect(r.plan.servers).toEqual([
      { server: 'shard-a', shards: 4 },
      { server: 'shard-b', shards: 4 },
    ]);
    const control = await connectMysql(env.config.control.url);
    const [jobs] = await control.query('SELECT COUNT(*) AS n FROM jobs');
    await control.end();
    expect(Number((jobs as { n: number }[])[0]!.n)).toBe(0);
  });

  it('copies every row byte-identical (NULL vs empty, 64-bit, DECIMAL(38,10), DATETIME(6), emoji, latin1/gbk, bytes)', async () => {
    const res = await runCli(['full', '--config', env.configPath, '--json']);
    expect(res.code, res.stderr + res.stdout).toBe(0);
    const r = JSON.parse(res.stdout).result;
    expect(r.state).toBe('done');
    expect(r.method).toBe('load');
    expect(r.rowsThisRun).toBe(MEMBERS + TAGS);
    expect(r.tables.map((t: { table: string; rows: number }) => [t.table, t.rows])).toEqual([
      ['member', MEMBERS],
      ['member_tag', TAGS],
    ]);
    const perServer = r.servers.reduce((n: number, s: { rows: number }) => n + s.rows, 0);
    expect(perServer).toBe(MEMBERS + TAGS);
    expect(r.servers.every((s: { rows: number }) => s.rows > 0)).toBe(true);
    expect(r.startPositions[0].kind).toBe('mysql');
    expect(r.startPositions[0].position.file).toMatch(/mysql-bin/);
    expect(res.stdout).not.toContain('password');
    await expectAllCopied(writer);
  });

  it('the start position is recorded before the first chunk, and a rerun of a done job copies nothing', async () => {
    const control = await connectMysql(env.config.control.url);
    const [rows] = await control.query(
      `SELECT p.recorded_at <= (SELECT MIN(updated_at) FROM chunks c WHERE c.job_id = p.job_id) AS first FROM cdc_start_positions p`,
    );
    await control.end();
    expect((rows as { first: number }[]).map((r) => Number(r.first))).toEqual([1]);

    const again = await runCli(['full', '--config', env.configPath, '--json']);
    expect(again.code, again.stderr).toBe(0);
    const r = JSON.parse(again.stdout).result;
    expect(r.state).toBe('done');
    expect(r.rowsThisRun).toBe(0);
    // A stop request on a job with every chunk done leaves nothing for a rerun: no error, so exit 0.
    const stopped = await runFullCopy(env.config, { logger: silentLogger, signal: AbortSignal.abort() });
    expect(stopped).toMatchObject({ state: 'done', errors: [], left: [] });

    const status = await runCli(['status', '--config', env.configPath, '--json']);
    const s = JSON.parse(status.stdout).result;
    expect(s.jobs[0]).toMatchObject({ kind: 'full', state: 'done' });
    expect(s.fullCopy.jobs[0]).toMatchObject({ state: 'done', chunksLeft: 0, rows: MEMBERS + TAGS, rejectedValues: 0 });
    expect(s.fullCopy.jobs[0].startPositions[0].kind).toBe('mysql');
    const human = await runCli(['status', '--config', env.configPath]);
    expect(human.stdout).toMatch(/full copy:\n  job \d+ \(member,member_tag\): done, \d+\/\d+ chunks done, 330 rows, 0 rejected values; CDC start mysql/);

    // Verify runs every few minutes in a cutover: 25 later jobs must not turn the copy into "not started".
    for (let i = 0; i < 25; i++) expect((await runCli(['verify', '--config', env.configPath, '--shards', '0'])).code).toBe(0);
    const later = JSON.parse((await runCli(['status', '--config', env.configPath, '--json'])).stdout).result;
    expect(later.jobs.some((j: { kind: string }) => j.kind === 'full')).toBe(false);
    for (const table of ['member', 'member_tag']) {
      expect(later.perTable.find((t: { table: string }) => t.table === table).fullCopy).toMatchObject({ jobId: r.jobId, state: 'done', chunksFailed: 0 });
    }
  });

  it('--max-rows-per-sec paces the copy', async () => {
    const res = await runCli(['full', '--config', env.configPath, '--restart', '--tables', 'member', '--max-rows-per-sec', '200', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout).result;
    expect(r.rowsThisRun).toBe(MEMBERS);
    // Every row is paid for before it is written, the first chunk's too.
    expect(r.seconds).toBeGreaterThanOrEqual(MEMBERS / 200 - 0.05);
  });

  it('--restart copies again on purpose, through the row path with copy.method insert, with the same result', async () => {
    const saved = env.raw;
    env.raw = { ...env.raw, copy: { chunk_rows: 50, batch_rows: 16, workers: 2, method: 'insert' } };
    const path = writeConfig(env, env.configPath.replace(/\.yaml$/, '-insert.yaml'));
    env.raw = saved;
    const res = await runCli(['full', '--config', path, '--restart', '--tables', 'member,member_tag', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout).result;
    expect(r.method).toBe('insert');
    expect(r.rowsThisRun).toBe(MEMBERS + TAGS);
    await expectAllCopied(writer);
  });

  it('--tables copies only the named tables; a table another job copied is refused without --restart; an unknown name is refused', async () => {
    // member_tag was copied by the job of both tables: a new job for it alone would copy it again.
    const again = await runCli(['full', '--config', env.configPath, '--tables', 'member_tag']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/member_tag is in full copy job \d+ \(member,member_tag, done\): pass --restart to copy it again/);
    // Its dry run is refused the same way: a rehearsal fails where the run will.
    const rehearsal = await runCli(['full', '--config', env.configPath, '--tables', 'member_tag', '--dry-run']);
    expect([rehearsal.code, rehearsal.stderr]).toEqual([again.code, again.stderr]);
    const all = await runCli(['full', '--config', env.configPath]);
    expect(all.code, all.stderr).toBe(0); // the job of both tables, done: joined, nothing copied
    const res = await runCli(['full', '--config', env.configPath, '--tables', 'member_tag', '--restart', '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).result.tables.map((t: { table: string }) => t.table)).toEqual(['member_tag']);
    // A name given twice is the same job: joined (done), not a second copy with a second start position.
    const twice = await runCli(['full', '--config', env.configPath, '--tables', 'member_tag,member_tag', '--json']);
    expect(twice.code, twice.stderr).toBe(0);
    expect(JSON.parse(twice.stdout).result).toMatchObject({ jobId: JSON.parse(res.stdout).result.jobId, rowsThisRun: 0 });
    const bad = await runCli(['full', '--config', env.configPath, '--tables', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('table nope is not in the config');
  });
});

describe('membermig full keeps apart every key the source keeps apart', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createCopyEnv({ shardCount: 2, tables: (db) => ({ word: { source: `${db}.word`, target: 'word', shard_key: 'n' } }) });
    const conn = await connectMysql(env.legacyUrl);
    // latin1_swedish_ci (MySQL's old default) holds 'bar' and 'bår' apart; utf8mb4_general_ci calls them equal.
    await conn.query(`CREATE TABLE word (
      w VARCHAR(16) CHARACTER SET latin1 COLLATE latin1_swedish_ci NOT NULL PRIMARY KEY,
      alias VARCHAR(16) CHARACTER SET latin1 COLLATE latin1_swedish_ci NOT NULL,
      note VARCHAR(16) CHARACTER SET latin1 COLLATE latin1_swedish_ci NULL,
      n INT NOT NULL,
      UNIQUE KEY word_alias (alias)
    )`);
    await conn.query("INSERT INTO word VALUES ('bar', 'x', 'a', 1), ('bår', 'å', 'b', 1), ('Ærø', 'X2', NULL, 1)");
    await conn.end();
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
  });
  afterAll(async () => env?.cleanup());

  it('unique key columns of a non-UTF-8 collation land in utf8mb4_bin; every row arrives', async () => {
    const res = await runCli(['full', '--config', env.configPath, '--json']);
    expect(res.code, res.stderr).toBe(0);
    const shard = await connectMysql(env.urls.shardA);
    const [columns] = await shard.query(
      "SELECT COLUMN_NAME AS c, COLLATION_NAME AS collation FROM information_schema.COLUMNS WHERE TABLE_NAME = 'word' AND TABLE_SCHEMA = ? ORDER BY ORDINAL_POSITION",
      [`${env.prefix}_s000`],
    );
    expect(columns).toEqual([
      { c: 'w', collation: 'utf8mb4_bin' },
      { c: 'alias', collation: 'utf8mb4_bin' },
      { c: 'note', collation: 'utf8mb4_general_ci' },
      { c: 'n', collation: null },
    ]);
    await shard.end();
    const writer = createShardWriter(env.config);
    try {
      const rows = await readShards(writer, 'word', 1, 3);
      expect([...rows.values()].map((r) => r[0]).sort()).toEqual(['bar', 'bår', 'Ærø'].sort());
    } finally {
      await writer.close();
    }
  });
});

describe('membermig full pages by ENUM key columns in their sort order (row path, small batches)', () => {
  let env: TestEnv;
  const ROWS = 60;
  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: 2,
      tables: (db) => ({ contact: { source: `${db}.contact`, target: 'contact', shard_key: 'member_id' } }),
      extra: { copy: { method: 'insert', chunk_rows: 25, batch_rows: 2 } },
    });
    const conn = await connectMysql(env.legacyUrl);
    // ENUM sorts by member number (email, phone, address) but 'address' < 'phone' as text.
    await conn.query(`CREATE TABLE contact (
      member_id INT NOT NULL, kind ENUM('email','phone','address') NOT NULL, value VARCHAR(40) NOT NULL,
      PRIMARY KEY (member_id, kind)
    )`);
    const rows = Array.from({ length: ROWS }, (_, i) => [Math.floor(i / 3), ['email', 'phone', 'address'][i % 3], `v${i}`]);
    await conn.query('INSERT INTO contact VALUES ?', [rows]);
    await conn.end();
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
  });
  afterAll(async () => env?.cleanup());

  it('copies every row', async () => {
    const res = await runCli(['full', '--config', env.configPath, '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).result).toMatchObject({ method: 'insert', rowsThisRun: ROWS });
    const writer = createShardWriter(env.config);
    try {
      const rows = await readShards(writer, 'contact', 2);
      expect(rows.size).toBe(ROWS);
      expect([...rows.values()].filter((r) => r[1] === 'address')).toHaveLength(ROWS / 3);
    } finally {
      await writer.close();
    }
  });
});
