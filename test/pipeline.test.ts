import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import { isTransient } from '../src/mysql/retry.js';
import { keyPositions, targetDdl } from '../src/rows/ddl.js';
import type { Row, TableSpec } from '../src/rows/types.js';
import { createShardMap } from '../src/shard/map.js';
import { createSourceReader, type SourceReader } from '../src/source/index.js';
import { createShardWriter, type ShardWriter } from '../src/target/writer.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { createMemberTable } from './support/nasty.js';
import { readShards } from './support/shards.js';

/** The shared pieces other phases build on: describeTable, readRange, the DDL, upsertRows/deleteKeys. */
describe('row pipeline, mysql source reader and shard writer', () => {
  let env: TestEnv;
  let reader: SourceReader;
  let writer: ShardWriter;
  let spec: TableSpec;
  const ROWS = 60;

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4 });
    await createMemberTable(env.legacyUrl, ROWS);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    reader = createSourceReader(env.config, silentLogger);
    writer = createShardWriter(env.config);
    spec = await reader.describeTable('member', env.config.tables.member!);
  });
  afterAll(async () => {
    await reader?.close();
    await writer?.close();
    await env?.cleanup();
  });

  it('describes the source table: types, charsets, key, indexes', () => {
    expect(spec.primaryKey).toEqual(['member_id']);
    const types = Object.fromEntries(spec.columns.map((c) => [c.source, [c.targetType, c.targetCollation ?? null, c.nullable]]));
    expect(types).toEqual({
      member_id: ['bigint unsigned', null, false],
      name: ['varchar(64)', 'utf8mb4_unicode_ci', true],
      nick: ['varchar(40)', 'utf8mb4_general_ci', true],
      city: ['varchar(40)', 'utf8mb4_general_ci', true],
      balance: ['decimal(38,10)', null, true],
      points: ['bigint', null, false],
      joined: ['datetime(6)', null, true],
      born: ['date', null, true],
      note: ['text', 'utf8mb4_general_ci', true],
      avatar: ['varbinary(32)', null, true],
    });
    expect(spec.indexes).toEqual([{ name: 'member_name', unique: false, columns: ['name'] }]);
    expect(targetDdl(spec, 'db')).toContain('PRIMARY KEY (`member_id`)');
  });

  it('init created every shard table from the DDL', async () => {
    const a = await connectMysql(env.urls.shardA);
    const [rows] = await a.query('SELECT TABLE_SCHEMA AS db FROM information_schema.TABLES WHERE TABLE_NAME = ? AND TABLE_SCHEMA LIKE ? ORDER BY 1', [
      'member',
      `${env.prefix}\\_s%`,
    ]);
    await a.end();
    expect((rows as { db: string }[]).map((r) => r.db)).toEqual([`${env.prefix}_s000`, `${env.prefix}_s001`]);
  });

  it('reads key ranges in batches, converts latin1/gbk to utf8mb4, and upserts/deletes idempotently', async () => {
    const all: Row[] = [];
    for await (const batch of reader.readRange(spec, null, null, 7)) {
      expect(batch.length).toBeLessThanOrEqual(7);
      all.push(...batch);
    }
    expect(all).toHaveLength(ROWS);
    const byId = new Map(all.map((r) => [r[0] as string, r]));
    expect(byId.get('18446744073709551615')![2]).toBe('café');
    expect(byId.get('9007199254740993')![3]).toBe('上海');

    const bounds = [];
    for await (const b of reader.chunkBoundaries(spec, 25)) bounds.push(b);
    expect(bounds).toHaveLength(2);
    let inRanges = 0;
    for (const [lo, hi] of [[null, bounds[0]!], [bounds[0]!, bounds[1]!], [bounds[1]!, null]] as const) {
      for await (const batch of reader.readRange(spec, lo, hi, 100)) inRanges += batch.length;
    }
    expect(inRanges).toBe(ROWS);

    // Route, write twice (idempotent), read back byte for byte.
    const byShard = new Map<number, Row[]>();
    for (const r of all) {
      const shard = writer.map.shardOf(r[0] as string);
      byShard.set(shard, [...(byShard.get(shard) ?? []), r]);
    }
    for (let pass = 0; pass < 2; pass++) for (const [shard, rows] of byShard) await writer.upsertRows(shard, spec, rows);
    const back = await readShards(writer, spec.target);
    expect(back.size).toBe(ROWS);
    for (const r of all) expect(back.get(r[0] as string)).toEqual(r);

    const victim = all[5]!;
    const keys = keyPositions(spec).map((i) => victim[i]!);
    const shard = writer.map.shardOf(victim[0] as string);
    expect(await writer.deleteKeys(shard, spec, [keys])).toBe(1);
    expect(await writer.deleteKeys(shard, spec, [keys])).toBe(0);
    expect((await readShards(writer, spec.target)).size).toBe(ROWS - 1);
  });

  it('bulk path: the source builds shard numbers and LOAD DATA lines, the writer loads them byte-identical', async () => {
    const expected: Row[] = [];
    for await (const batch of reader.readRange(spec, null, null, 1000)) expected.push(...batch);
    const chunk = await reader.readTsv!(spec, null, null, writer.map);
    expect(chunk!.rows).toBe(ROWS);
    expect(chunk!.byShard.size).toBe(4); // crc32: the shard computed by the source
    for (let pass = 0; pass < 2; pass++) {
      for (const [shard, blocks] of chunk!.byShard) expect(await writer.loadBlocks(shard, spec, blocks, chunk!.rowsByShard.get(shard)!)).toBe(chunk!.rowsByShard.get(shard));
    }
    const back = await readShards(writer, spec.target);
    expect(back.size).toBe(ROWS);
    for (const r of expected) expect(back.get(r[0] as string)).toEqual(r);

    // murmur3 has no SQL form: Node routes the lines by their key, to the same shards.
    const murmur = createShardMap({ count: 4, function: 'murmur3', database: 'x{shard}', serverOf: ['a', 'a', 'b', 'b'], servers: { a: { name: 'a', primary: 'mysql://a', replicas: [] }, b: { name: 'b', primary: 'mysql://b', replicas: [] } } });
    const routed = await reader.readTsv!(spec, null, null, murmur);
    for (const [shard, blocks] of routed!.byShard) {
      const lines = Buffer.concat(blocks).toString('utf8').split('\n').slice(0, -1);
      expect(lines.length).toBe(routed!.rowsByShard.get(shard));
      for (const line of lines) expect(murmur.shardOf(line.split('\t')[0]!)).toBe(shard);
    }
  });

  it('bulk path: shards of one server load in one transaction, all or none', async () => {
    const chunk = await reader.readTsv!(spec, null, null, writer.map);
    const server = writer.map.servers()[0]!.name;
    const shards = writer.map.shardsOn(server).filter((s) => chunk!.byShard.has(s));
    expect(shards.length).toBe(2);
    const pool = writer.poolOf(server);
    const count = async () => {
      let n = 0;
      for (const s of shards) n += Number(((await pool.query(`SELECT COUNT(*) AS n FROM \`${writer.map.databaseOf(s)}\`.member`))[0] as { n: number }[])[0]!.n);
      return n;
    };
    for (const s of shards) await pool.query(`DELETE FROM \`${writer.map.databaseOf(s)}\`.member`);
    const parts = shards.map((shard) => ({ shard, spec, blocks: chunk!.byShard.get(shard)!, rows: chunk!.rowsByShard.get(shard)! }));
    const expected = parts.reduce((n, p) => n + p.rows, 0);

    // The second shard's lines end with one the target cannot read: the first shard's rows go too.
    const broken = [...parts.slice(0, -1), { ...parts.at(-1)!, blocks: [...parts.at(-1)!.blocks, Buffer.from('99\tnot a row\n')], rows: parts.at(-1)!.rows + 1 }];
    await expect(writer.loadShards(broken)).rejects.toThrow(/doesn't contain data for all columns/); // strict mode: an error, not a warning
    expect(await count()).toBe(0);

    expect(await writer.loadShards(parts)).toBe(expected);
    expect(await count()).toBe(expected);
    const other = writer.map.servers()[1]!.name;
    await expect(writer.loadShards([parts[0]!, { ...parts[0]!, shard: writer.map.shardsOn(other)[0]! }])).rejects.toThrow(`is on server ${other}`);
  });

  it('a write held by a table lock fails as transient after the lock wait, instead of hanging', async () => {
    const shard = writer.map.shardsOn(writer.map.servers()[0]!.name)[0]!;
    const table = `\`${writer.map.databaseOf(shard)}\`.member`;
    const quick = createShardWriter(env.config, { lockWaitSeconds: 1 });
    const locker = await connectMysql(writer.map.serverOf(shard).primary);
    try {
      await locker.query(`LOCK TABLES ${table} WRITE`);
      // The table's lock is waited for before any line is read (a hang here ends in the test's timeout).
      const error = await quick.loadBlocks(shard, spec, [Buffer.from('1\tx\n')], 1).catch((e: unknown) => e as { code?: string });
      expect(error).toMatchObject({ code: 'ER_LOCK_WAIT_TIMEOUT' });
      expect(isTransient(error)).toBe(true);
    } finally {
      await locker.query('UNLOCK TABLES');
      await locker.end();
      await quick.close();
    }
  });

  it('a TLS handshake failure is not transient, though the driver marks it fatal; nor is a wrong password', async () => {
    const url = writer.map.servers()[0]!.primary;
    const failure = (promise: Promise<{ end(): Promise<void> }>) =>
      promise.then(
        (c) => c.end().then(() => null),
        (e: unknown) => e as { code?: string; fatal?: boolean },
      );
    // The test servers have no TLS: a client that requires it fails in the handshake.
    const tls = await failure(connectMysql(url, {}, { reject_unauthorized: true }));
    expect(tls).toMatchObject({ fatal: true });
    expect(tls!.code).toMatch(/^HANDSHAKE_/);
    expect(isTransient(tls)).toBe(false);
    const denied = await failure(connectMysql(Object.assign(new URL(url), { username: 'root', password: 'surely-not-this' }).toString()));
    expect(denied).toMatchObject({ code: 'ER_ACCESS_DENIED_ERROR' });
    expect(isTransient(denied)).toBe(false);
  });

  it('records the source binlog position', async () => {
    const pos = await reader.startPosition();
    expect(pos.kind).toBe('mysql');
    expect(pos.position.file).toMatch(/mysql-bin\.\d+/);
    expect(Number(pos.position.pos)).toBeGreaterThan(0);
  });
});
