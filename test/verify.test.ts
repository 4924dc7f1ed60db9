import { createServer, type AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileSync } from 'node:fs';
import type { RowDataPacket } from 'mysql2/promise';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '../src/log.js';
import { connectMysql } from '../src/mysql/connect.js';
import { shardMapFromConfig, type ShardMap } from '../src/shard/map.js';
import { chooseHash, runVerify } from '../src/verify/index.js';
import { runCli } from './support/cli.js';
import { copyTable } from './support/copy-rows.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { startFreezingProxy } from './support/freezing-proxy.js';
import { createMemberTable, memberId } from './support/nasty.js';

/** Runs SQL on the shard database that holds `shard`. */
async function onShard(env: TestEnv, map: ShardMap, shard: number, sql: string, params: unknown[] = []): Promise<RowDataPacket[]> {
  const conn = await connectMysql(map.serverOf(shard).primary, { database: map.databaseOf(shard) });
  try {
    await conn.query("SET time_zone = '+00:00'");
    const [rows] = await conn.query(sql, params);
    return rows as RowDataPacket[];
  } finally {
    await conn.end();
  }
}

const otherShard = (map: ShardMap, shard: number) => (shard + 3) % map.count;

describe('membermig verify: find, classify, repair, re-verify', () => {
  let env: TestEnv;
  let map: ShardMap;
  const ROWS = 300;

  beforeAll(async () => {
    env = await createTestEnv({
      shardCount: 8,
      extra: { verify: { chunk_rows: 60, workers: 2, recheck_after_seconds: 0 } },
    });
    map = shardMapFromConfig(env.config);
    await createMemberTable(env.legacyUrl, ROWS);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    expect(await copyTable(env.config, 'member')).toBe(ROWS);
  });
  afterAll(async () => env?.cleanup());

  it('a faithful copy verifies clean: exit 0, a clean verify_runs row', async () => {
    const res = await runCli(['verify', '--config', env.configPath, '--json']);
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout).result;
    expect(r.tables).toHaveLength(1);
    expect(r.tables[0]).toMatchObject({ table: 'member', state: 'clean', rowsSource: ROWS, rowsTarget: ROWS, differences: 0 });
    expect(r.tables[0].chunksChecked).toBe(r.tables[0].chunksTotal);
    expect(r.tables[0].chunksTotal).toBeGreaterThanOrEqual(5);
    const control = await connectMysql(env.config.control.url);
    const [runs] = await control.query<RowDataPacket[]>("SELECT state, finished_at FROM verify_runs WHERE table_name = 'member' ORDER BY id DESC LIMIT 1");
    await control.end();
    expect(runs[0]!.state).toBe('clean');
    expect(runs[0]!.finished_at).not.toBeNull();
    const status = JSON.parse((await runCli(['status', '--config', env.configPath, '--json'])).stdout).result;
    expect(status.verify.latest).toEqual([expect.objectContaining({ table: 'member', state: 'clean', differences: 0, rowsSource: ROWS })]);
    expect(status.verify.latest[0].ageSeconds).toBeLessThan(60);
  });

  it('plants every kind of difference; verify finds and classifies each, --dry-run changes nothing, --repair fixes all, then clean', async () => {
    const conn = await connectMysql(env.legacyUrl);
    const [legacyRows] = await conn.query<RowDataPacket[]>('SELECT member_id FROM member ORDER BY member_id');
    await conn.end();
    const ids = legacyRows.map((r) => String(r.member_id));
    const pick = (n: number) => ids[Math.floor((ids.length * n) / 7)]!;
    const missing = pick(1);
    const different = pick(2);
    const moved = pick(3);
    const duplicated = pick(4);
    const caseOnly = pick(5);
    const extra = '424242424242';

    await onShard(env, map, map.shardOf(missing), 'DELETE FROM member WHERE member_id = ?', [missing]);
    await onShard(env, map, map.shardOf(different), "UPDATE member SET joined = '2001-01-01 00:00:00.000001', balance = NULL WHERE member_id = ?", [different]);
    // Case only, under a case-insensitive collation (utf8mb4_unicode_ci): still a difference.
    await onShard(env, map, map.shardOf(caseOnly), "UPDATE member SET name = 'zhang WEI', note = CONCAT(COALESCE(note, ''), ' ') WHERE member_id = ?", [caseOnly]);
    const home = map.shardOf(moved);
    const [row] = await onShard(env, map, home, 'SELECT * FROM member WHERE member_id = ?', [moved]);
    await onShard(env, map, home, 'DELETE FROM member WHERE member_id = ?', [moved]);
    await onShard(env, map, otherShard(map, home), 'INSERT INTO member SET ?', [row]);
    const [dup] = await onShard(env, map, map.shardOf(duplicated), 'SELECT * FROM member WHERE member_id = ?', [duplicated]);
    await onShard(env, map, otherShard(map, map.shardOf(duplicated)), 'INSERT INTO member SET ?', [dup]);
    await onShard(env, map, map.shardOf(extra), 'INSERT INTO member SET ?', [{ ...dup, member_id: extra }]);

    const found = await runCli(['verify', '--config', env.configPath, '--json']);
    expect(found.code, found.stderr).toBe(1);
    const r = JSON.parse(found.stdout).result;
    expect(r.state).toBe('differences');
    const diffs = (r.differences as { kind: string; key: string[]; shard: number; columns?: string[] }[])
      .map((d) => ({ kind: d.kind, key: d.key[0], shard: d.shard, columns: d.columns?.slice().sort() ?? null }))
      .sort((a, b) => a.key!.localeCompare(b.key!));
    const expected = [
      { kind: 'missing', key: missing, shard: map.shardOf(missing), columns: null },
      { kind: 'different', key: different, shard: map.shardOf(different), columns: ['balance', 'joined'] },
      { kind: 'different', key: caseOnly, shard: map.shardOf(caseOnly), columns: ['name', 'note'] },
      { kind: 'wrong_shard', key: moved, shard: otherShard(map, home), columns: null },
      { kind: 'wrong_shard', key: duplicated, shard: otherShard(map, map.shardOf(duplicated)), columns: null },
      { kind: 'extra', key: extra, shard: map.shardOf(extra), columns: null },
    ].sort((a, b) => a.key.localeCompare(b.key));
    expect(diffs).toEqual(expected);
    expect(r.tables[0]).toMatchObject({ state: 'differences', differences: 6, repaired: 0 });

    const dry = await runCli(['verify', '--config', env.configPath, '--json', '--repair', '--dry-run']);
    expect(dry.code).toBe(1);
    const planned = JSON.parse(dry.stdout).result.plannedRepairs as { key: string[]; action: string }[];
    expect(Object.fromEntries(planned.map((p) => [p.key[0], p.action]))).toEqual({
      [missing]: 'upsert',
      [different]: 'upsert',
      [caseOnly]: 'upsert',
      [moved]: 'move',
      [duplicated]: 'move',
      [extra]: 'delete',
    });
    const still = await runCli(['verify', '--config', env.configPath, '--json']);
    expect(JSON.parse(still.stdout).result.tables[0].differences).toBe(6);

    // Drill down with tiny leaves so the split-and-bucket path is the one that finds them.
    const repaired = await runVerify(env.config, { logger: silentLogger, repair: true, leafRows: 4 });
    expect(repaired.state).toBe('clean');
    expect(repaired.tables[0]).toMatchObject({ state: 'clean', differences: 6, repaired: 6 });
    expect(Object.fromEntries(repaired.differences.map((d) => [d.key[0], d.repairAction]))).toEqual({
      [missing]: 'upsert',
      [different]: 'upsert',
      [caseOnly]: 'upsert',
      [moved]: 'move',
      [duplicated]: 'move',
      [extra]: 'delete',
    });
    expect(repaired.differences.every((d) => d.repairedAt !== null)).toBe(true);

    const clean = await runCli(['verify', '--config', env.configPath, '--json']);
    expect(clean.code, clean.stdout).toBe(0);
    expect(JSON.parse(clean.stdout).result.tables[0]).toMatchObject({ state: 'clean', rowsSource: ROWS, rowsTarget: ROWS });
  });

  it('--repair drains repair_queue: re-copies the key from legacy, removes a stale copy elsewhere, marks it resolved', async () => {
    const id = memberId(10);
    const home = map.shardOf(id);
    await onShard(env, map, home, "UPDATE member SET name = 'stale' WHERE member_id = ?", [id]);
    const [row] = await onShard(env, map, home, 'SELECT * FROM member WHERE member_id = ?', [id]);
    await onShard(env, map, otherShard(map, home), 'INSERT INTO member SET ?', [row]);
    const control = await connectMysql(env.config.control.url);
    await control.query("INSERT INTO repair_queue (table_name, pk, reason, origin) VALUES ('member', ?, 'dual write failed', 'shim')", [JSON.stringify([id])]);
    const res = await runCli(['verify', '--config', env.configPath, '--json', '--repair']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).result.repairQueue).toEqual([{ table: 'member', entries: 1, resolved: 1, left: 0, legacyBehind: 0, unrepresentable: 0, malformed: 0, problems: [] }]);
    const [q] = await control.query<RowDataPacket[]>('SELECT resolved_at FROM repair_queue');
    await control.end();
    expect(q[0]!.resolved_at).not.toBeNull();
    const [fixed] = await onShard(env, map, home, 'SELECT name FROM member WHERE member_id = ?', [id]);
    expect(fixed!.name).not.toBe('stale');
    expect(await onShard(env, map, otherShard(map, home), 'SELECT 1 FROM member WHERE member_id = ?', [id])).toHaveLength(0);
  });

  it('a repair_queue entry whose pk does not name the key is counted and left open; the entries after it are still repaired', async () => {
    const id = memberId(12);
    const home = map.shardOf(id);
    await onShard(env, map, home, "UPDATE member SET name = 'stale 12' WHERE member_id = ?", [id]);
    const control = await connectMysql(env.config.control.url);
    try {
      await control.query('DELETE FROM repair_queue');
      // What a shim writing a composite-key table without `pk` would queue: the shard key alone.
      const [bad] = await control.query("INSERT INTO repair_queue (table_name, pk, reason, origin) VALUES ('member', '{\"nick\":\"x\"}', 'dual write failed', 'shim')");
      // A value the key column cannot hold, and too many values: each built into a statement, they failed the whole repair.
      const [notNumber] = await control.query("INSERT INTO repair_queue (table_name, pk, reason, origin) VALUES ('member', '{\"member_id\":\"abc\"}', 'dual write failed', 'shim')");
      const [twoValues] = await control.query("INSERT INTO repair_queue (table_name, pk, reason, origin) VALUES ('member', '[1, 2]', 'dual write failed', 'shim')");
      const [padded] = await control.query(`INSERT INTO repair_queue (table_name, pk, reason, origin) VALUES ('member', '["00${id}"]', 'dual write failed', 'shim')`);
      await control.query("INSERT INTO repair_queue (table_name, pk, reason, origin) VALUES ('member', ?, 'dual write failed', 'shim')", [JSON.stringify({ member_id: id })]);
      const res = await runCli(['verify', '--config', env.configPath, '--json', '--repair']);
      expect(res.code, res.stderr).toBe(1);
      const entry = (r: unknown) => `entry ${(r as { insertId: number }).insertId}`;
      expect(JSON.parse(res.stdout).result.repairQueue).toEqual([
        {
          table: 'member',
          entries: 5,
          resolved: 1,
          left: 4,
          legacyBehind: 0,
          unrepresentable: 0,
          malformed: 4,
          problems: [
            `${entry(bad)}: repair_queue pk {"nick":"x"} has no value for key column member_id`,
            `${entry(notNumber)}: repair_queue pk {"member_id":"abc"}: key value "abc" is not a number (key column member_id)`,
            `${entry(twoValues)}: repair_queue pk [1,2] has 2 values; the key (member_id) has 1`,
            `${entry(padded)}: repair_queue pk ["00${id}"]: key value "00${id}" is not an integer in its plain form (key column member_id)`,
          ],
        },
      ]);
      const [fixed] = await onShard(env, map, home, 'SELECT name FROM member WHERE member_id = ?', [id]);
      expect(fixed!.name).not.toBe('stale 12');
    } finally {
      await control.query('DELETE FROM repair_queue');
      await control.end();
    }
  });

  it('--repair never re-copies a key whose legacy row is behind MySQL (a failed shim write to legacy): held until legacy catches up', async () => {
    const id = memberId(11);
    const home = map.shardOf(id);
    await onShard(env, map, home, "UPDATE member SET name = 'newer in mysql' WHERE member_id = ?", [id]);
    const control = await connectMysql(env.config.control.url);
    await control.query('DELETE FROM repair_queue');
    await control.query("INSERT INTO repair_queue (table_name, pk, reason, origin, behind) VALUES ('member', ?, 'shim: legacy write failed', 'shim', 'legacy')", [JSON.stringify([id])]);
    const held = await runCli(['verify', '--config', env.configPath, '--json', '--repair']);
    expect(held.code, held.stderr).toBe(1);
    const r = JSON.parse(held.stdout).result;
    expect(r.repairQueue).toEqual([{ table: 'member', entries: 1, resolved: 0, left: 1, legacyBehind: 1, unrepresentable: 0, malformed: 0, problems: [] }]);
    expect(r.differences.map((d: { key: string[]; kind: string; repairAction: string | null; repairedAt: string | null }) => [d.key[0], d.kind, d.repairAction, d.repairedAt])).toEqual([
      [id, 'different', 'hold', null],
    ]);
    const [kept] = await onShard(env, map, home, 'SELECT name FROM member WHERE member_id = ?', [id]);
    expect(kept!.name).toBe('newer in mysql');
    // Legacy catches up (a later write reached both sides): the entry resolves, nothing is copied.
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query("UPDATE member SET name = 'newer in mysql' WHERE member_id = ?", [id]);
    await legacy.end();
    const caughtUp = await runCli(['verify', '--config', env.configPath, '--json', '--repair']);
    expect(caughtUp.code, caughtUp.stdout).toBe(0);
    expect(JSON.parse(caughtUp.stdout).result.repairQueue).toEqual([{ table: 'member', entries: 1, resolved: 1, left: 0, legacyBehind: 0, unrepresentable: 0, malformed: 0, problems: [] }]);
    const [q] = await control.query<RowDataPacket[]>('SELECT resolved_at FROM repair_queue');
    await control.end();
    expect(q[0]!.resolved_at).not.toBeNull();
  });

  it('--repair waits while sync has writes of the table parked: they land first, a repair before them would be overwritten', async () => {
    const id = memberId(13);
    const home = map.shardOf(id);
    await onShard(env, map, home, "UPDATE member SET name = 'stale 13' WHERE member_id = ?", [id]);
    const control = await connectMysql(env.config.control.url);
    await control.query('DELETE FROM repair_queue');
    await control.query("INSERT INTO repair_queue (table_name, pk, reason, origin) VALUES ('member', ?, 'dual write failed', 'shim')", [JSON.stringify({ member_id: id })]);
    // What sync parks when the shard server cannot take a write (its replay runs once it can).
    await control.query("INSERT INTO cdc_parked (server, table_name, shard, op, data) VALUES (?, 'member', ?, 'upsert', '[]')", [map.serverOf(home).name, home]);
    try {
      const waiting = await runCli(['verify', '--config', env.configPath, '--json', '--repair']);
      expect(waiting.code, waiting.stderr).toBe(1);
      const r = JSON.parse(waiting.stdout).result;
      expect(r.repairQueue).toEqual([{ table: 'member', entries: 1, resolved: 0, left: 1, legacyBehind: 0, unrepresentable: 0, malformed: 0, problems: [] }]);
      expect(r.differences.map((d: { key: string[]; kind: string; repairAction: string | null; repairedAt: string | null }) => [d.key[0], d.kind, d.repairAction, d.repairedAt])).toEqual([
        [id, 'different', 'hold', null],
      ]);
      expect(waiting.stderr).toContain('parked for a shard server');
      const [still] = await onShard(env, map, home, 'SELECT name FROM member WHERE member_id = ?', [id]);
      expect(still!.name).toBe('stale 13');
      // The parked writes are replayed (the drainer deletes them): repairs go ahead.
      await control.query('DELETE FROM cdc_parked');
      const repaired = await runCli(['verify', '--config', env.configPath, '--json', '--repair']);
      expect(repaired.code, repaired.stdout).toBe(0);
      const [fixed] = await onShard(env, map, home, 'SELECT name FROM member WHERE member_id = ?', [id]);
      expect(fixed!.name).not.toBe('stale 13');
    } finally {
      await control.query('DELETE FROM cdc_parked');
      await control.query('DELETE FROM repair_queue');
      await control.end();
    }
  });

  it('a member only MySQL has (a MySQL-primary insert whose legacy write failed) is held, found on its shard, never deleted', async () => {
    const control = await connectMysql(env.config.control.url);
    await control.query('DELETE FROM repair_queue');
    // A new member whose home is not shard 0: the entry's key alone has to lead the check to it.
    let n = 900_000;
    while (map.shardOf(String(n)) === 0) n++;
    const id = String(n);
    const home = map.shardOf(id);
    const [some] = await onShard(env, map, home, 'SELECT * FROM member LIMIT 1', []);
    await onShard(env, map, home, 'INSERT INTO member SET ?', [{ ...some, member_id: id }]);
    try {
      await control.query("INSERT INTO repair_queue (table_name, pk, reason, origin, behind) VALUES ('member', ?, 'shim: legacy write failed', 'shim', 'legacy')", [JSON.stringify({ member_id: id })]);
      const held = await runCli(['verify', '--config', env.configPath, '--json', '--repair']);
      expect(held.code, held.stderr).toBe(1);
      const r = JSON.parse(held.stdout).result;
      expect(r.repairQueue).toEqual([{ table: 'member', entries: 1, resolved: 0, left: 1, legacyBehind: 1, unrepresentable: 0, malformed: 0, problems: [] }]);
      expect(r.differences.map((d: { key: string[]; kind: string; repairAction: string | null }) => [d.key[0], d.kind, d.repairAction])).toEqual([[id, 'extra', 'hold']]);
      expect(await onShard(env, map, home, 'SELECT 1 FROM member WHERE member_id = ?', [id])).toHaveLength(1);
    } finally {
      await onShard(env, map, home, 'DELETE FROM member WHERE member_id = ?', [id]);
      await control.query('DELETE FROM repair_queue');
      await control.end();
    }
  });

  it('--shards: a row on a checked shard whose home is not checked (and holds no copy) is wrong_shard, and --repair moves it', async () => {
    const id = memberId(33);
    const home = map.shardOf(id);
    const stray = otherShard(map, home);
    const [row] = await onShard(env, map, home, 'SELECT * FROM member WHERE member_id = ?', [id]);
    await onShard(env, map, stray, 'INSERT INTO member SET ?', [row]);
    await onShard(env, map, home, 'DELETE FROM member WHERE member_id = ?', [id]);
    const seen = await runCli(['verify', '--config', env.configPath, '--json', '--shards', String(stray)]);
    expect(seen.code, seen.stderr).toBe(1);
    expect(JSON.parse(seen.stdout).result.differences.map((d: { key: string[]; kind: string; shard: number }) => [d.key[0], d.kind, d.shard])).toEqual([[id, 'wrong_shard', stray]]);
    expect((await runCli(['verify', '--config', env.configPath, '--shards', String(stray), '--repair'])).code).toBe(0);
    expect(await onShard(env, map, stray, 'SELECT 1 FROM member WHERE member_id = ?', [id])).toHaveLength(0);
    expect(await onShard(env, map, home, 'SELECT 1 FROM member WHERE member_id = ?', [id])).toHaveLength(1);
    expect((await runCli(['verify', '--config', env.configPath])).code).toBe(0);
  });

  it('--repair refuses (exit 2) a shard table with a unique index besides the primary key; a plain verify still runs', async () => {
    await onShard(env, map, 1, 'ALTER TABLE member ADD UNIQUE KEY uq_points (points)', []);
    try {
      const repair = await runCli(['verify', '--config', env.configPath, '--repair']);
      expect(repair.code).toBe(2);
      expect(repair.stderr).toContain(`shard table ${map.databaseOf(1)}.member on server ${map.serverOf(1).name} has UNIQUE index uq_points (points)`);
      expect((await runCli(['verify', '--config', env.configPath])).code).toBe(0);
    } finally {
      await onShard(env, map, 1, 'ALTER TABLE member DROP INDEX uq_points', []);
    }
  });

  it('--shards checks only those shards; --sample checks part of the chunks; bad flags exit 2', async () => {
    const id = memberId(20);
    const home = map.shardOf(id);
    await onShard(env, map, home, "UPDATE member SET points = 1 WHERE member_id = ?", [id]);
    const others = Array.from({ length: map.count }, (_, s) => s).filter((s) => s !== home);
    const elsewhere = await runCli(['verify', '--config', env.configPath, '--json', '--shards', others.join(',')]);
    expect(elsewhere.code, elsewhere.stdout).toBe(0);
    const mine = await runCli(['verify', '--config', env.configPath, '--json', '--shards', String(home)]);
    expect(mine.code).toBe(1);
    const r = JSON.parse(mine.stdout).result;
    expect(r.differences.map((d: { key: string[]; kind: string }) => [d.key[0], d.kind])).toEqual([[id, 'different']]);
    expect(r.tables[0].rowsTarget).toBeLessThan(ROWS);

    // As README and --help write it: a percentage, '%' or not.
    const sampled = await runCli(['verify', '--config', env.configPath, '--json', '--sample', '30%', '--repair']);
    const sample = JSON.parse(sampled.stdout).result;
    expect(sample.tables[0]!.chunksTotal).toBeLessThan(6);
    expect(sample.tables[0]!.scope).toMatchObject({ sample: 30 });
    const zero = await runCli(['verify', '--config', env.configPath, '--sample', '0%']);
    expect([zero.code, zero.stderr]).toEqual([2, expect.stringContaining('--sample: expected a percentage from 0.01% to 100% in steps of 0.01%, got 0')]);
    await runVerify(env.config, { logger: silentLogger, repair: true });

    expect((await runCli(['verify', '--config', env.configPath, '--tables', 'nope'])).code).toBe(2);
    expect((await runCli(['verify', '--config', env.configPath, '--since', '1h'])).code).toBe(2); // no updated_at configured
    expect((await runCli(['verify', '--config', env.configPath, '--shards', '99'])).code).toBe(2);
    // A typo'd range is refused before it is expanded; no worker would claim anything (it waited for ever).
    const huge = await runCli(['verify', '--config', env.configPath, '--shards', '0-20000000']);
    expect([huge.code, huge.stderr]).toEqual([2, expect.stringContaining('--shards: 0-20000000 is outside 0..')]);
    const none = await runCli(['verify', '--config', env.configPath, '--workers', '0']);
    expect([none.code, none.stderr]).toEqual([2, expect.stringContaining('--workers: expected a positive integer, got "0"')]);
    expect((await runCli(['verify', '--config', env.configPath, '--dry-run'])).code).toBe(2);
  });

  it('--since checks only rows changed since then (tables.NAME.updated_at); people get a table on stdout', async () => {
    const raw = structuredClone(env.raw) as { tables: Record<string, Record<string, unknown>> };
    raw.tables.member!.updated_at = 'joined';
    const configPath = env.configPath.replace(/\.yaml$/, '-since.yaml');
    writeFileSync(configPath, stringify(raw));
    const old = memberId(1); // joined 2001-02-02
    const recent = memberId(25); // joined 2025-02-26
    for (const id of [old, recent]) await onShard(env, map, map.shardOf(id), "UPDATE member SET nick = 'edited' WHERE member_id = ?", [id]);
    const since = await runCli(['verify', '--config', configPath, '--since', '2020-01-01T00:00:00Z']);
    expect(since.code).toBe(1);
    expect(since.stdout).toMatch(/table\s+state\s+chunks\s+legacy rows\s+shard rows\s+differences/);
    expect(since.stdout).toContain(`member  different  ${map.shardOf(recent)}`);
    expect(since.stdout).not.toContain(old);
    expect(since.stdout).toContain('differences persist');
    const all = await runCli(['verify', '--config', configPath, '--json', '--repair']);
    expect(JSON.parse(all.stdout).result.differences.map((d: { key: string[] }) => d.key[0]).sort()).toEqual([old, recent].sort());
    expect(all.code).toBe(0);
    // A --since that matches nothing (a mistyped year) is clean, and says that nothing was compared.
    const future = await runCli(['verify', '--config', configPath, '--since', '2099-01-01T00:00:00Z']);
    expect(future.code).toBe(0);
    expect(future.stdout).toContain('member: no row was compared (since 2099-01-01');
  });

  it('a shard server refusing us: its chunks are retried, then the run ends failed (exit 1), says what is left, and logs no stack or password', async () => {
    const raw = structuredClone(env.raw) as { servers: Record<string, Record<string, unknown>> };
    const url = new URL(String(raw.servers['shard-b']!.primary));
    url.password = 'Wr0ngSecret';
    raw.servers['shard-b']!.primary = url.toString();
    const configPath = env.configPath.replace(/\.yaml$/, '-down.yaml');
    writeFileSync(configPath, stringify(raw));
    const res = await runCli(['verify', '--config', configPath, '--json']);
    expect(res.code).toBe(1);
    const r = JSON.parse(res.stdout).result;
    expect(r.state).toBe('failed');
    expect(r.tables[0]).toMatchObject({ state: 'failed', chunksChecked: 0 });
    expect(r.tables[0].chunksTotal).toBeGreaterThan(0);
    const control = await connectMysql(env.config.control.url);
    const [chunks] = await control.query<RowDataPacket[]>('SELECT DISTINCT state, attempts FROM chunks WHERE job_id = ?', [r.jobId]);
    const [last] = await control.query<RowDataPacket[]>('SELECT last_error FROM chunks WHERE job_id = ? LIMIT 1', [r.jobId]);
    await control.end();
    expect(chunks).toEqual([{ state: 'failed', attempts: 3 }]);
    expect(String(last[0]!.last_error)).toContain('shard server shard-b');
    expect(String(last[0]!.last_error)).toContain('Access denied');
    expect(res.stderr).toContain('chunk failed; will retry');
    // The result says why, not only the log: the server and its error, per table.
    expect(r.failures).toEqual([{ table: 'member', chunks: r.tables[0].chunksTotal, error: expect.stringMatching(/shard server shard-b.*Access denied/) }]);
    const human = await runCli(['verify', '--config', configPath]);
    expect(human.stdout).toMatch(/member: \d+ chunk\(s\) failed: .*shard server shard-b.*Access denied/);
    expect(res.stderr).not.toMatch(/\n\s+at /);
    expect(res.stderr + res.stdout + human.stdout + human.stderr).not.toContain('Wr0ngSecret');
  });

  it('a shard server that accepts connections and never answers (hung): the run ends at once, naming it (exit 1), not chunk by chunk', async () => {
    const hung = createServer(() => {}); // accepts, never sends the handshake
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    try {
      const raw = structuredClone(env.raw) as { servers: Record<string, Record<string, unknown>> };
      const url = new URL(String(raw.servers['shard-b']!.primary));
      url.port = String((hung.address() as AddressInfo).port);
      raw.servers['shard-b']!.primary = url.toString();
      const configPath = env.configPath.replace(/\.yaml$/, '-hung.yaml');
      writeFileSync(configPath, stringify(raw));
      const res = await runCli(['verify', '--config', configPath, '--json']);
      expect(res.code).toBe(1);
      expect(JSON.parse(res.stdout).error).toMatch(/^shard server shard-b: .*ETIMEDOUT/);
      expect(res.stderr).not.toContain('chunk failed');
    } finally {
      hung.close();
    }
  }, 60_000);

  it('a shard server that hangs in the middle of a pass ends the pass (exit 1, naming it), its chunks left pending; a rerun finishes the job', async () => {
    const raw = structuredClone(env.raw) as { servers: Record<string, Record<string, unknown>>; verify: Record<string, unknown> };
    const url = new URL(String(raw.servers['shard-b']!.primary));
    const proxy = await startFreezingProxy(Number(url.port));
    try {
      url.port = String(proxy.port);
      raw.servers['shard-b']!.primary = url.toString();
      raw.verify = { ...raw.verify, workers: 1, statement_timeout_seconds: 2 };
      const configPath = env.configPath.replace(/\.yaml$/, '-hangs.yaml');
      writeFileSync(configPath, stringify(raw));
      // The second chunk's checksum reaches shard-b, which never answers it, nor anything after.
      let checksums = 0;
      proxy.hangAt((bytes) => bytes.includes('AS shard, COUNT(*) AS n') && ++checksums === 2);
      const started = performance.now();
      const res = await runCli(['verify', '--restart', '--config', configPath, '--json']);
      const seconds = (performance.now() - started) / 1000;
      expect(res.code, res.stderr).toBe(1);
      const r = JSON.parse(res.stdout).result;
      expect(r.state).toBe('failed');
      expect(r.failures).toEqual([{ table: 'member', chunks: 1, error: expect.stringMatching(/^shard server shard-b: no answer within 2 s .*the pass ended/) }]);
      expect(r.tables[0].chunksChecked).toBe(1);
      // Not chunk after chunk, each waiting out the timeout (and its retries).
      expect(seconds).toBeLessThan(30);
      const control = await connectMysql(env.config.control.url);
      const [states] = await control.query<RowDataPacket[]>('SELECT state, COUNT(*) AS n FROM chunks WHERE job_id = ? GROUP BY state ORDER BY state', [r.jobId]);
      await control.end();
      expect(states.map((s) => [s.state, Number(s.n)])).toEqual([
        ['done', 1],
        ['pending', r.tables[0].chunksTotal - 1],
      ]);
      // While it hangs, the next run ends at its start, naming it.
      const stillHung = await runCli(['verify', '--config', configPath, '--json']);
      expect([stillHung.code, JSON.parse(stillHung.stdout).error]).toEqual([1, expect.stringMatching(/^shard server shard-b: .*ETIMEDOUT/)]);

      // The server answers again: the next run joins the job and finishes it.
      const rerun = await runCli(['verify', '--config', env.configPath, '--json']);
      expect(rerun.code, rerun.stderr).toBe(0);
      const again = JSON.parse(rerun.stdout).result;
      expect([again.jobId, again.joined, again.state]).toEqual([r.jobId, true, 'clean']);
      expect(again.tables[0].chunksChecked).toBe(again.tables[0].chunksTotal);
    } finally {
      await proxy.close();
    }
  }, 90_000);

  it('a legacy server that hangs during a re-check ends the pass too, naming it (exit 1)', async () => {
    const id = memberId(44);
    await onShard(env, map, map.shardOf(id), "UPDATE member SET name = 'hang probe' WHERE member_id = ?", [id]);
    const raw = structuredClone(env.raw) as { source: { url: string }; verify: Record<string, unknown> };
    const url = new URL(raw.source.url);
    const proxy = await startFreezingProxy(Number(url.port));
    let repaired: Awaited<ReturnType<typeof runCli>>;
    try {
      url.port = String(proxy.port);
      raw.source.url = url.toString();
      raw.verify = { ...raw.verify, workers: 1, statement_timeout_seconds: 2, recheck_after_seconds: 0 };
      const configPath = env.configPath.replace(/\.yaml$/, '-legacy-hangs.yaml');
      writeFileSync(configPath, stringify(raw));
      // The re-check reads the suspect rows by key; legacy never answers that read.
      proxy.hangAt((bytes) => bytes.includes(`\`member_id\` = ${id}`));
      const res = await runCli(['verify', '--restart', '--config', configPath, '--json']);
      expect(res.code, res.stderr).toBe(1);
      const r = JSON.parse(res.stdout).result;
      expect(r.state).toBe('failed');
      // Its chunk, and any chunk whose checksum went to legacy after it hung: one whose legacy read needed
      // a new connection then (a busy machine) fails connecting, as another entry naming the same server.
      expect(r.failures.map((f: { error: string }) => f.error)).toContainEqual(expect.stringMatching(/^legacy server: no answer within 2 s .*the pass ended/));
      for (const f of r.failures) expect(f).toEqual({ table: 'member', chunks: expect.any(Number), error: expect.stringMatching(/^legacy server: .*the pass ended/) });
    } finally {
      await proxy.close();
      // Put the row back for the tests after, whatever happened above: a repair from legacy.
      repaired = await runCli(['verify', '--repair', '--restart', '--config', env.configPath]);
    }
    expect(repaired.code, repaired.stderr).toBe(0);
  }, 90_000);

  it('a row that changed again between two re-checks is still moving, not a persistent difference: verify looks until it settles', async () => {
    const id = memberId(40);
    const home = map.shardOf(id);
    const legacy = await connectMysql(env.legacyUrl);
    const setLegacy = (name: string) => legacy.query('UPDATE member SET name = ? WHERE member_id = ?', [name, id]);
    const setShard = (name: string) => onShard(env, map, home, 'UPDATE member SET name = ? WHERE member_id = ?', [name, id]);
    try {
      await setLegacy('moving v0');
      await setShard('moving v0');
      await setLegacy('moving v1'); // the shard is a change behind, as with sync lagging
      const out = new PassThrough();
      const mismatch = new Promise<void>((resolve) => out.on('data', (d: Buffer) => d.toString().includes('mismatch: re-checking') && resolve()));
      const run = runVerify(env.config, { logger: createLogger('info', out), tables: ['member'], workers: 1, recheckAfterSeconds: 3, listDifferences: 5 });
      await mismatch;
      // Re-checks come about 3 s apart: each of the first two sees a difference, of other rows each time.
      await sleep(4500);
      await setLegacy('moving v2');
      await setShard('moving v1');
      await sleep(3000);
      await setShard('moving v2');
      const r = await run;
      expect([r.state, r.differences]).toEqual(['clean', []]);
    } finally {
      await legacy.end();
    }
  }, 90_000);

  it('two verifiers with the same flags share one job through leases', async () => {
    const [a, b] = await Promise.all([
      runVerify(env.config, { logger: silentLogger, workers: 1 }),
      runVerify(env.config, { logger: silentLogger, workers: 1 }),
    ]);
    expect(a.jobId).toBe(b.jobId);
    expect(a.tables[0]).toMatchObject({ state: 'clean', rowsSource: ROWS });
    const control = await connectMysql(env.config.control.url);
    const [chunks] = await control.query<RowDataPacket[]>("SELECT COUNT(*) AS n, SUM(attempts) AS attempts FROM chunks WHERE job_id = ?", [a.jobId]);
    const [runs] = await control.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM verify_runs WHERE id = ?', [a.tables[0]!.runId]);
    await control.end();
    expect(Number(chunks[0]!.attempts)).toBe(Number(chunks[0]!.n)); // every chunk checked once
    expect(Number(runs[0]!.n)).toBe(1);
  });

  it('verify.hash: md5 checks the same data clean; crc32 is refused for a SQL Server legacy side', async () => {
    const md5 = await runVerify({ ...env.config, verify: { ...env.config.verify, hash: 'md5' } }, { logger: silentLogger });
    expect(md5).toMatchObject({ state: 'clean', hash: 'md5' });
    expect(md5.tables[0]).toMatchObject({ rowsSource: ROWS, rowsTarget: ROWS });
    expect(chooseHash(env.config)).toBe('crc32');
    const mssql = { ...env.config, source: { ...env.config.source, kind: 'mssql' as const } };
    expect(chooseHash(mssql)).toBe('md5');
    expect(() => chooseHash({ ...mssql, verify: { ...env.config.verify, hash: 'crc32' } })).toThrow(/no CRC32 in T-SQL/);
  });

  it('--watch repeats passes until the signal', async () => {
    const controller = new AbortController();
    let passes = 0;
    const done = runVerify(env.config, {
      logger: silentLogger,
      watchSeconds: 0.1,
      signal: controller.signal,
      onPass: () => {
        if (++passes === 2) controller.abort();
      },
    });
    const r = await done;
    expect(r.passes).toBe(2);
    expect(r.state).toBe('clean');
  });
});
