import type { Connection, Pool } from 'mysql2/promise';
import type { Config } from '../src/config/schema.js';
import { markPartitionsBehind } from '../src/cdc/offsets.js';
import { checkGates } from '../src/gray/gates.js';
import { recordConnectorHealth } from '../src/cdc/connector-outages.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { setGray } from '../src/gray/operations.js';
import { connectMysql } from '../src/mysql/connect.js';
import { openControlStore } from '../src/store/control.js';
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { runCli } from './support/cli.js';
import { memberAndAddressEnv, type TestEnv } from './support/env.js';

/** Gray and shim settings through the CLI, on a real control store. */
describe('membermig gray and shim', () => {
  let env: TestEnv;
  let db: Connection;
  const cli = (...args: string[]) => runCli([...args, '--config', env.configPath]);
  const json = async (...args: string[]) => {
    const r = await cli(...args, '--json');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    return JSON.parse(r.stdout).result;
  };

  /** Makes every gate pass: a clean verify just now, a caught-up sync, no dead letters. */
  async function gatesOpen(table = 'member'): Promise<void> {
    await db.query("INSERT INTO verify_runs (table_name, state, finished_at) VALUES (?, 'clean', NOW(6))", [table]);
    await db.query(
      `INSERT INTO cdc_offsets (consumer_group, topic, partition_no, next_offset, high_watermark, last_source_ts_ms) VALUES ('g', 't', 0, 100, 100, UNIX_TIMESTAMP() * 1000)
       ON DUPLICATE KEY UPDATE next_offset = 100, high_watermark = 100, last_source_ts_ms = UNIX_TIMESTAMP() * 1000, updated_at = NOW(6)`,
    );
    await db.query('UPDATE dead_letters SET resolved_at = NOW(6) WHERE resolved_at IS NULL');
  }

  beforeAll(async () => {
    env = await memberAndAddressEnv(8);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    db = await connectMysql(env.config.control.url);
  });
  afterAll(async () => {
    await db?.end();
    await env?.cleanup();
  });
  beforeEach(async () => {
    await db.query('DELETE FROM verify_runs');
    await db.query('DELETE FROM cdc_offsets');
    await db.query('DELETE FROM dead_letters');
  });

  it('refuses bad input with exit 2 and a clear message, before any write', async () => {
    const cases: [string[], string][] = [
      [['gray', 'set', 'nosuch', '--read', '5%', '--reason', 'r'], 'unknown table "nosuch"; the config has: member, address'],
      [['gray', 'set', 'member', '--read', '101%', '--reason', 'r'], '--read "101%" is above 100%'],
      [['gray', 'set', 'member', '--write', '0.001%', '--reason', 'r'], '--write "0.001%" is finer than the resolution of 0.01%'],
      [['gray', 'set', 'member', '--read', 'lots', '--reason', 'r'], 'is not a percentage'],
      [['gray', 'set', 'member', '--read', '5%'], 'a reason is required'],
      [['gray', 'set', 'member', '--reason', 'r'], 'nothing to change'],
      [['gray', 'check', 'nosuch', '1'], 'unknown table "nosuch"'],
      [['gray', 'rollback', 'member', '--to', '5%'], '--to only takes 0'],
      [['shim', 'set', 'member', 'half_and_half', '--reason', 'r'], 'unknown shim mode "half_and_half"; modes in order: legacy_only -> dual_legacy_primary'],
      [['shim', 'set', 'nosuch', 'mysql_only', '--reason', 'r'], 'unknown table "nosuch"'],
      [['shim', 'set', 'member', 'dual_legacy_primary'], 'a reason is required'],
    ];
    for (const [args, message] of cases) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(message);
    }
    const [rows] = await db.query('SELECT COUNT(*) AS n FROM settings_history');
    expect(Number((rows as { n: number }[])[0]!.n)).toBe(0);
  });

  it('gates refuse a raise with the gate and its numbers; --force --reason overrides and is recorded', async () => {
    // Nothing has run yet: no verify, no sync.
    let r = await cli('gray', 'set', 'member', '--read', '5%', '--reason', 'first canary');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('gate verify: no finished full verify of table member');
    expect(r.stderr).toContain('gate sync_lag: no sync has ever run');

    // A verify with differences, an old verify, a lagging sync, a dead letter: each named with its numbers.
    await gatesOpen();
    await db.query("INSERT INTO verify_runs (table_name, state, differences, finished_at) VALUES ('member', 'differences', 3, NOW(6))");
    r = await cli('gray', 'set', 'member', '--read', '5%', '--reason', 'r');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/gate verify: last verify of member \(run \d+, 0\.\d min ago\) found 3 differences/);

    // A clean run of part of the table (--sample, --shards) does not open the gate.
    await db.query('DELETE FROM verify_runs');
    await db.query(`INSERT INTO verify_runs (table_name, scope, state, finished_at) VALUES
      ('member', '{"shards":"all","sample":5,"since":null}', 'clean', NOW(6)), ('member', '{"shards":"0-3","sample":null,"since":null}', 'clean', NOW(6))`);
    r = await cli('gray', 'set', 'member', '--read', '5%', '--reason', 'r');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('gate verify: no finished full verify of table member');

    // A clean full run, then a partial run that found differences and left them: the gate stays shut.
    await db.query('DELETE FROM verify_runs');
    await db.query(`INSERT INTO verify_runs (table_name, scope, state, differences, started_at, finished_at) VALUES
      ('member', NULL, 'clean', 0, NOW(6) - INTERVAL 25 MINUTE, NOW(6) - INTERVAL 20 MINUTE),
      ('member', '{"shards":"5","sample":null,"since":null}', 'differences', 30, NOW(6) - INTERVAL 6 MINUTE, NOW(6) - INTERVAL 5 MINUTE)`);
    r = await cli('gray', 'set', 'member', '--read', '5%', '--reason', 'r');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/gate verify: verify run \d+ of member \(partial: .*"shards":"5".*\) found 30 differences \(0 repaired\) after the clean run \d+ began/);

    // The same when the partial run also had a failed chunk (it ends 'failed'), and when it finished
    // while the clean run was still going (that run may have checked those rows before the damage).
    await db.query('DELETE FROM verify_runs');
    await db.query(`INSERT INTO verify_runs (table_name, scope, state, differences, started_at, finished_at) VALUES
      ('member', NULL, 'clean', 0, NOW(6) - INTERVAL 30 MINUTE, NOW(6) - INTERVAL 1 MINUTE),
      ('member', '{"shards":"5","sample":null,"since":null}', 'failed', 12, NOW(6) - INTERVAL 20 MINUTE, NOW(6) - INTERVAL 10 MINUTE)`);
    r = await cli('gray', 'set', 'member', '--read', '5%', '--reason', 'r');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/gate verify: verify run \d+ of member \(partial: .*"shards":"5".*, failed\) found 12 differences \(0 repaired\) after the clean run \d+ began/);
    // Repaired in that run: nothing left, the gate opens.
    await gatesOpen();
    await db.query('DELETE FROM verify_runs');
    await db.query(`INSERT INTO verify_runs (table_name, scope, state, differences, repaired, started_at, finished_at) VALUES
      ('member', NULL, 'clean', 0, 0, NOW(6) - INTERVAL 30 MINUTE, NOW(6) - INTERVAL 1 MINUTE),
      ('member', '{"shards":"5","sample":null,"since":null}', 'failed', 12, 12, NOW(6) - INTERVAL 20 MINUTE, NOW(6) - INTERVAL 10 MINUTE)`);
    expect((await checkGates(db as unknown as Pool, env.config, 'member')).find((g) => g.gate === 'verify')).toMatchObject({ ok: true });

    await db.query('DELETE FROM verify_runs');
    // Resumed after a kill: it finished a minute ago, but it started (checked its first chunks) 90 minutes ago.
    await db.query("INSERT INTO verify_runs (table_name, state, started_at, finished_at) VALUES ('member', 'clean', NOW(6) - INTERVAL 90 MINUTE, NOW(6) - INTERVAL 1 MINUTE)");
    r = await cli('gray', 'set', 'member', '--read', '5%', '--reason', 'r');
    expect(r.stderr).toMatch(/is 90\.\d min old; gray.gates.max_verify_age_minutes is 60/);

    await gatesOpen();
    await db.query('UPDATE cdc_offsets SET high_watermark = 250, last_source_ts_ms = (UNIX_TIMESTAMP() - 30) * 1000');
    r = await cli('gray', 'set', 'member', '--read', '5%', '--reason', 'r');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/gate sync_lag: sync lag 3\d\.\d s \(worst t\[0\]\), 150 events behind over 1 partitions; gray.gates.max_sync_lag_seconds is 5/);

    // Caught up, but sync stopped 400 s ago: the gate and status tell the same lag (status said 0.0 s).
    await gatesOpen();
    await db.query('UPDATE cdc_offsets SET updated_at = NOW(6) - INTERVAL 400 SECOND');
    r = await cli('gray', 'set', 'member', '--read', '5%', '--reason', 'r');
    // Its event count is as of its last report: said so, since no sync has reported for 400 s.
    expect(r.stderr).toMatch(/gate sync_lag: sync lag 40\d\.\d s \(worst t\[0\]\), 0 events behind over 1 partitions as of the last sync report 40\d s ago \(is sync running\?\)/);
    const shown = JSON.parse((await cli('status', '--json')).stdout).result;
    expect(shown.sync.partitions[0].lagSeconds).toBeGreaterThanOrEqual(400);
    expect(shown.sync.partitions[0].reportedSecondsAgo).toBeGreaterThanOrEqual(400);
    expect((await cli('status')).stdout).toMatch(/no sync has reported for 40\d s \(is one running\?\): lag events are as of its last report/);

    await gatesOpen();
    await db.query("INSERT INTO dead_letters (source, partition_no, offset_no, table_name, reason) VALUES ('t', 0, '17', 'member', 'bad decimal')");
    r = await cli('gray', 'set', 'member', '--read', '5%', '--reason', 'r');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('gate dead_letters: 1 dead letters waiting for member');
    expect((await json('gray', 'show', 'member'))[0].readBp).toBe(0);

    // --force without a reason is still refused; with one it goes through and is recorded as forced.
    expect((await cli('gray', 'set', 'member', '--read', '5%', '--force')).stderr).toContain('a reason is required');
    const forced = await json('gray', 'set', 'member', '--read', '5%', '--force', '--reason', 'incident 42: dead letter is a known test row', '--operator', 'alice');
    expect(forced).toMatchObject({ changed: true, forced: true, after: { read_bp: 500, write_bp: 0 } });
    const [hist] = await db.query("SELECT operator, forced, reason FROM settings_history WHERE kind = 'gray' ORDER BY id DESC LIMIT 1");
    expect((hist as object[])[0]).toMatchObject({ operator: 'alice', forced: 1 });
    expect((hist as { reason: string }[])[0]!.reason).toContain('incident 42: dead letter is a known test row [forced past: gate dead_letters');

    // With the gates open a raise passes unforced, and lowering never checks them.
    await gatesOpen();
    expect(await json('gray', 'set', 'member', '--read', '10%', '--write', '0.5%', '--reason', 'next step')).toMatchObject({ forced: false, after: { read_bp: 1000, write_bp: 50 } });
    await db.query('DELETE FROM verify_runs');
    expect(await json('gray', 'set', 'member', '--read', '7.25%', '--reason', 'lower')).toMatchObject({ gates: [], after: { read_bp: 725 } });
  });

  it('a partition behind with no applied batch yet gets a row from the running sync, and its unknown lag shuts the gate', async () => {
    await gatesOpen();
    const lagGate = async () => (await checkGates(db as unknown as Pool, env.config, 'member')).find((g) => g.gate === 'sync_lag')!;
    expect(await lagGate()).toMatchObject({ ok: true });
    // Partition 1 of t has a backlog and none of its batches has been applied (its consumer is slow to start).
    await markPartitionsBehind(db as unknown as Pool, [{ group: 'g', topic: 't', partition: 1, nextOffset: '0', highWatermark: '40' }]);
    expect(await lagGate()).toMatchObject({ ok: false, message: 't[1] is 40 events behind and has applied no event with a source time yet, so its lag is unknown' });
    // A row that exists keeps its position and event time; only its end moves.
    await markPartitionsBehind(db as unknown as Pool, [{ group: 'g', topic: 't', partition: 0, nextOffset: '0', highWatermark: '120' }]);
    const [rows] = await db.query("SELECT next_offset, high_watermark, last_source_ts_ms IS NOT NULL AS timed FROM cdc_offsets WHERE topic = 't' AND partition_no = 0");
    const r0 = (rows as { next_offset: string | number; high_watermark: string | number; timed: number }[])[0]!;
    expect([Number(r0.next_offset), Number(r0.high_watermark), Number(r0.timed)]).toEqual([100, 120, 1]);
    await db.query("DELETE FROM cdc_offsets WHERE topic = 't' AND partition_no = 1");
    await gatesOpen();
  });

  it('writes parked for a shard server count as lag: positions look caught up while that server is behind', async () => {
    await gatesOpen();
    const lagGate = async () => (await checkGates(db as unknown as Pool, env.config, 'member')).find((g) => g.gate === 'sync_lag')!;
    expect(await lagGate()).toMatchObject({ ok: true });
    await db.query(`INSERT INTO cdc_parked (server, table_name, shard, op, data, parked_at) VALUES
      ('b', 'member', 9, 'upsert', '{}', NOW(6) - INTERVAL 3 SECOND), ('b', 'member', 9, 'upsert', '{}', NOW(6) - INTERVAL 2 MINUTE)`);
    expect(await lagGate()).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^sync has writes parked \(the shard server could not take them\): 2 for server b, the oldest 12\d\.\d s old; .*max_sync_lag_seconds is 5$/),
    });
    // Parked only for a moment (within the limit): no more lag than the limit allows.
    await db.query('UPDATE cdc_parked SET parked_at = NOW(6) - INTERVAL 1 SECOND');
    expect(await lagGate()).toMatchObject({ ok: true });
    await db.query('DELETE FROM cdc_parked');
  });

  it('a connector outage shuts sync_lag until a clean verify begins after it ends; one still open until the connector is seen running', async () => {
    await gatesOpen();
    const running = (name: string) => ({ name, state: 'RUNNING', tasks: [{ id: 0, state: 'RUNNING' }], problem: null });
    const lagGate = async (connectors?: string[]) => {
      const config = connectors ? ({ ...env.config, cdc: { kafka: { brokers: ['127.0.0.1:9092'], topic: 't', group: 'g', connect: { url: 'http://127.0.0.1:2', connectors } } } } as Config) : env.config;
      return (await checkGates(db as unknown as Pool, config, 'member', (connectors ?? []).map(running))).find((g) => g.gate === 'sync_lag')!;
    };
    const openOutages = async () => ((await db.query('SELECT connector FROM cdc_connector_outages WHERE ended_at IS NULL ORDER BY connector'))[0] as { connector: string }[]).map((r) => r.connector);
    await db.query('DELETE FROM verify_runs');
    await db.query("INSERT INTO verify_runs (table_name, state, started_at, finished_at) VALUES ('member', 'clean', NOW(6) - INTERVAL 10 MINUTE, NOW(6) - INTERVAL 9 MINUTE)");
    try {
      // A Connect that could not be asked counts (when the worker is down, so is Debezium); a second sighting is the same outage.
      const unreachable = { name: 'legacy', state: 'UNREACHABLE', tasks: [], problem: 'Kafka Connect did not answer' };
      await recordConnectorHealth(db as unknown as Pool, [unreachable]);
      await recordConnectorHealth(db as unknown as Pool, [unreachable]);
      expect(await openOutages()).toEqual(['legacy']);
      // Still open, and this config cannot ask Connect: shut, saying what to set.
      expect((await lagGate()).message).toMatch(/^connector legacy was seen not running at \S+Z \(Kafka Connect did not answer\) and not seen running since: this config has no cdc\.kafka\.connect to see it run again/);
      // Seen running again: ended; the gate wants a clean verify begun after that.
      await recordConnectorHealth(db as unknown as Pool, [running('legacy')]);
      expect(await openOutages()).toEqual([]);
      expect(await lagGate()).toMatchObject({ ok: false, message: expect.stringMatching(/^connector legacy was not running from \S+Z to \S+Z \(Kafka Connect did not answer\): .*a clean verify of member begun after that proves the shards have them \(membermig verify --tables member\)$/) });
      await db.query("INSERT INTO verify_runs (table_name, state, started_at, finished_at) VALUES ('member', 'clean', NOW(6) + INTERVAL 1 SECOND, NOW(6) + INTERVAL 1 SECOND)");
      expect(await lagGate()).toMatchObject({ ok: true });

      // Renamed: the old name's open outage would never end; a step whose config names the new one ends it now, and a verify is due.
      await recordConnectorHealth(db as unknown as Pool, [{ ...running('legacy'), state: 'MISSING', problem: 'connector legacy does not exist' }]);
      expect(await openOutages()).toEqual(['legacy']);
      await new Promise((r) => setTimeout(r, 1100));
      await recordConnectorHealth(db as unknown as Pool, [running('legacy-v2')]);
      expect(await openOutages()).toEqual([]);
      expect((await lagGate(['legacy-v2'])).message).toMatch(/^connector legacy was not running from \S+Z to \S+Z \(connector legacy does not exist\)/);
      await db.query("INSERT INTO verify_runs (table_name, state, started_at, finished_at) VALUES ('member', 'clean', NOW(6) + INTERVAL 1 SECOND, NOW(6) + INTERVAL 1 SECOND)");
      expect(await lagGate(['legacy-v2'])).toMatchObject({ ok: true });
    } finally {
      await db.query('DELETE FROM cdc_connector_outages');
      await db.query('DELETE FROM verify_runs');
      await gatesOpen();
    }
  });

  it('a clean verify from before a full copy job of the table (full --restart emptied and copied it again) does not open the gate', async () => {
    await gatesOpen();
    const verifyGate = async () => (await checkGates(db as unknown as Pool, env.config, 'member')).find((g) => g.gate === 'verify')!;
    await db.query('DELETE FROM verify_runs');
    await db.query("INSERT INTO verify_runs (table_name, state, started_at, finished_at) VALUES ('member', 'clean', NOW(6) - INTERVAL 10 MINUTE, NOW(6) - INTERVAL 9 MINUTE)");
    expect(await verifyGate()).toMatchObject({ ok: true });
    try {
      // A copy of another table, and one of member that began before the run: the run still vouches.
      await db.query(`INSERT INTO jobs (kind, name, state, options, created_at) VALUES
        ('full', 'address', 'done', '{"tables":["address"],"chunkRows":50000}', NOW(6) - INTERVAL 2 MINUTE),
        ('full', 'member', 'abandoned', '{"tables":["member"],"chunkRows":50000}', NOW(6) - INTERVAL 30 MINUTE)`);
      expect(await verifyGate()).toMatchObject({ ok: true });
      // full --restart of member 5 minutes ago: the shard tables were emptied and copied again since.
      await db.query(`INSERT INTO jobs (kind, name, state, options, created_at) VALUES ('full', 'member,address', 'done', '{"tables":["address","member"],"chunkRows":50000}', NOW(6) - INTERVAL 5 MINUTE)`);
      expect(await verifyGate()).toMatchObject({ ok: false, message: expect.stringMatching(/^full copy job \d+ of member \(done\) began after the last clean verify \(run \d+\): its rows are not verified; run membermig verify --tables member$/) });
      // status says so beside the last verify, too.
      const shown = await cli('status', '--json');
      const member = JSON.parse(shown.stdout).result.perTable.find((t: { table: string }) => t.table === 'member');
      expect(member.lastVerify).toMatchObject({ state: 'clean', copiedSince: expect.any(Number) });
      // With members of the table on MySQL (when earlier tests left them there) a failing gate is a problem: exit 1.
      const problems: string[] = JSON.parse(shown.stdout).result.problems;
      expect(shown.code).toBe(problems.length > 0 ? 1 : 0);
      if (member.grayRead !== '0%' || member.shimMode !== 'legacy_only' || member.grayAllowed > 0) {
        expect(problems).toContainEqual(expect.stringMatching(/^member: members are on MySQL but gate verify fails: full copy job \d+ of member/));
      }
      expect((await cli('status')).stdout).toMatch(/clean, 0 differences, .* ago \(.*\); full copy job \d+ began after it: not verified since/);
      // A verify after that copy opens it again.
      await db.query("INSERT INTO verify_runs (table_name, state, started_at, finished_at) VALUES ('member', 'clean', NOW(6) - INTERVAL 1 MINUTE, NOW(6))");
      expect(await verifyGate()).toMatchObject({ ok: true });
    } finally {
      await db.query("DELETE FROM jobs WHERE kind = 'full'");
    }
  });

  it('an unknown sync lag never passes the gate: a configured topic with no progress, a partition behind with no event time', async () => {
    await gatesOpen();
    const lagGate = async (topic: string | string[]) =>
      (await checkGates(db as unknown as Pool, { ...env.config, cdc: { kafka: { brokers: ['127.0.0.1:9092'], topic, group: 'g' } } } as Config, 'member')).find((g) => g.gate === 'sync_lag')!;
    expect(await lagGate('t')).toMatchObject({ ok: true });
    expect(await lagGate(['t', 'new-topic'])).toMatchObject({ ok: false, message: 'no sync progress recorded for topic new-topic yet, so its lag is unknown' });
    await db.query('UPDATE cdc_offsets SET high_watermark = 250, last_source_ts_ms = NULL');
    expect(await lagGate('t')).toMatchObject({ ok: false, message: 't[0] is 150 events behind and has applied no event with a source time yet, so its lag is unknown' });
    await gatesOpen();
  });

  it('rollback is never gated: it walks back through the sets, then to 0, and --to 0 empties the allowlist', async () => {
    await gatesOpen('address');
    await json('gray', 'set', 'address', '--read', '1%', '--reason', 'a');
    await json('gray', 'set', 'address', '--read', '5%', '--write', '1%', '--allow', '7,8', '--reason', 'b');
    await json('gray', 'set', 'address', '--read', '20%', '--reason', 'c');
    const salt = (await json('gray', 'show', 'address'))[0].salt;
    expect(salt).toMatch(/^[0-9a-f]{16}$/);

    // Every gate now fails: no verify, no sync, a dead letter. Rollback goes through anyway.
    await db.query('DELETE FROM verify_runs');
    await db.query('DELETE FROM cdc_offsets');
    await db.query("INSERT INTO dead_letters (source, partition_no, offset_no, table_name, reason) VALUES ('t', 0, '99', 'address', 'x')");
    const back1 = (await json('gray', 'rollback', 'address', '--operator', 'bob'))[0];
    expect(back1).toMatchObject({ changed: true, after: { read_bp: 500, write_bp: 100, allow: ['7', '8'], salt } });
    const back2 = (await json('gray', 'rollback', 'address'))[0];
    expect(back2.after).toMatchObject({ read_bp: 100, write_bp: 0, allow: [] });

    // A new raise after rollbacks, then --to 0: everything to 0, allowlist emptied, salt kept.
    await json('gray', 'set', 'address', '--read', '3%', '--allow', '9', '--force', '--reason', 'gates down, operator accepts');
    const zero = (await json('gray', 'rollback', 'address', '--to', '0'))[0];
    expect(zero.after).toEqual({ read_bp: 0, write_bp: 0, salt, allow: [], deny: [] });
    expect((await json('gray', 'rollback', 'address'))[0].changed).toBe(false);

    const history = await json('gray', 'history', 'address');
    expect(history.map((h: { action: string }) => h.action)).toEqual(['rollback', 'set', 'rollback', 'rollback', 'set', 'set', 'set']);
    expect(history[5]).toMatchObject({ operator: expect.any(String), reason: 'b', forced: false, oldValue: { read_bp: 100 }, newValue: { read_bp: 500 } });
  });

  it('rollback --if-version: two rollbacks of one incident at once step back once; the other is refused (exit 2) naming the change', async () => {
    await gatesOpen('address');
    await json('gray', 'rollback', 'address', '--to', '0');
    await json('gray', 'set', 'address', '--read', '1%', '--reason', 'a');
    await json('gray', 'set', 'address', '--read', '5%', '--reason', 'b');
    const seen = (await json('gray', 'show', 'address'))[0].version as number;
    // Two operators (or an alert's job and an operator) roll back what they both saw, at the same moment.
    const both = await Promise.all([1, 2].map((n) => cli('gray', 'rollback', 'address', '--if-version', String(seen), '--operator', `op${n}`, '--reason', 'incident', '--json')));
    expect(both.map((r) => r.code).sort()).toEqual([0, 2]);
    const refused = both.find((r) => r.code === 2)!;
    expect(refused.stderr).toMatch(new RegExp(`gray rollback --if-version ${seen}: address changed after it, at version ${seen + 1} \\(gray rollback by op[12] at [^)]+: incident\\); nothing was rolled back`));
    expect((await json('gray', 'show', 'address'))[0]).toMatchObject({ readBp: 100, version: seen + 1 });
    // Without --if-version, or with the version it now has, a rollback goes on.
    expect((await json('gray', 'rollback', 'address', '--if-version', String(seen + 1)))[0]).toMatchObject({ changed: true, after: { read_bp: 0 } });
    const bad = await cli('gray', 'rollback', 'address', '--if-version', 'latest');
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringContaining('--if-version must be a settings version (a whole number, as gray show gives it), got "latest"')]);
  });

  it('rollback goes past newer sets that only lowered something, to the raise before them', async () => {
    await gatesOpen('address');
    await json('gray', 'rollback', 'address', '--to', '0');
    await json('gray', 'set', 'address', '--read', '10%', '--reason', 'raise');
    await json('gray', 'set', 'address', '--deny', '42', '--reason', 'keep a VIP on legacy');
    const back = (await json('gray', 'rollback', 'address'))[0];
    expect(back).toMatchObject({ changed: true, after: { read_bp: 0, deny: ['42'] }, notes: ['went past 1 newer set(s) that raised nothing'] });
    expect((await json('gray', 'rollback', 'address'))[0].changed).toBe(false);
    const history = await json('gray', 'history', 'address');
    expect(history.slice(0, 4).map((h: { action: string; reason: string }) => [h.action, h.reason])).toEqual([
      ['rollback', 'rollback to the previous setting'],
      ['rollback', expect.stringMatching(/^rollback to the previous setting \(set #\d+ raised nothing: nothing to undo\)$/)],
      ['set', 'keep a VIP on legacy'],
      ['set', 'raise'],
    ]);
  });

  it('a config whose shard map was mis-edited blocks moves toward MySQL, never the way back (rollback, a shim step back, views)', async () => {
    await db.query("DELETE FROM settings WHERE table_name = 'address'");
    await json('shim', 'set', 'address', 'dual_legacy_primary', '--force', '--reason', 'test: forward');
    await json('gray', 'set', 'address', '--write', '50%', '--force', '--reason', 'test: raise');
    const misEdited = env.configPath.replace(/\.yaml$/, '-16-shards.yaml');
    writeFileSync(misEdited, stringify({ ...env.raw, shards: { ...(env.raw.shards as object), count: 16, placement: [{ shards: '0-15', server: 'shard-a' }] } }));
    const withMap = (...args: string[]) => runCli([...args, '--config', misEdited, '--json']);
    for (const forward of [['gray', 'set', 'address', '--read', '5%', '--force', '--reason', 'x'], ['shim', 'set', 'address', 'dual_mysql_primary', '--force', '--reason', 'x']]) {
      const r = await withMap(...forward);
      expect([forward.join(' '), r.code, JSON.parse(r.stdout).error]).toEqual([forward.join(' '), 2, expect.stringContaining("the config's shard map is not the one the control store")]);
    }
    for (const back of [['gray', 'show', 'address'], ['gray', 'history', 'address'], ['shim', 'show'], ['gray', 'rollback', 'address', '--reason', 'incident'], ['shim', 'set', 'address', 'legacy_only', '--reason', 'incident']]) {
      const r = await withMap(...back);
      expect([back.join(' '), r.code], r.stderr).toEqual([back.join(' '), 0]);
    }
    expect((await json('gray', 'show', 'address'))[0]).toMatchObject({ mode: 'legacy_only', writeBp: 10000 });
  });

  it('shim set back puts the whole table in the mode named, also when it never had a gray setting', async () => {
    await db.query("DELETE FROM settings WHERE table_name = 'address'");
    const forced = ['--force', '--reason', 'test: forward without gray'];
    const forward = await json('shim', 'set', 'address', 'dual_legacy_primary', ...forced);
    // The table has no updated_at column configured: sync cannot keep a late dual-write event from stepping a row back.
    expect(forward.notes).toContainEqual(expect.stringMatching(/^tables\.address\.updated_at is not configured: sync cannot tell legacy's event of a dual write/));
    await json('shim', 'set', 'address', 'dual_mysql_primary', ...forced);
    const back = await json('shim', 'set', 'address', 'dual_legacy_primary', '--reason', 'back');
    expect(back.notes).toEqual(['write percentage 0% -> 100% (the whole table is back in dual_legacy_primary)']);
    expect((await json('gray', 'show', 'address'))[0]).toMatchObject({ writeBp: 10000, readBp: 0 });
    await json('shim', 'set', 'address', 'legacy_only', '--reason', 'reset');
  });

  it('a write percentage set while the table is legacy_only says that it changes nothing yet', async () => {
    await db.query("DELETE FROM settings WHERE table_name = 'address'");
    const set = await json('gray', 'set', 'address', '--write', '100%', '--force', '--reason', 'test: forgot the shim step');
    expect(set.notes).toContain('address is in shim mode legacy_only, where the write percentage changes nothing: every member writes legacy only until shim set address dual_legacy_primary, which starts it again at 0%');
    // In a dual mode the write percentage is the ramp: no such note.
    await json('shim', 'set', 'address', 'dual_legacy_primary', '--force', '--reason', 'test: dual');
    expect((await json('gray', 'set', 'address', '--write', '5%', '--force', '--reason', 'test: ramp')).notes.filter((n: string) => n.includes('changes nothing'))).toEqual([]);
    await json('shim', 'set', 'address', 'legacy_only', '--reason', 'reset');
    await db.query("DELETE FROM settings WHERE table_name = 'address'");
  });

  it('shim mode: forward one step at a time (gated), back any number of steps, every change recorded', async () => {
    process.env.MEMBERMIG_OPERATOR = 'carol';
    try {
      let r = await cli('shim', 'set', 'member', 'dual_mysql_primary', '--reason', 'skip ahead');
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('forward one step at a time: member is legacy_only, the next step is dual_legacy_primary (not dual_mysql_primary)');

      r = await cli('shim', 'set', 'member', 'dual_legacy_primary', '--reason', 'start dual writes');
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('refused to move member from legacy_only to dual_legacy_primary: gate verify');

      await gatesOpen();
      await json('gray', 'set', 'member', '--write', '40%', '--reason', 'w');
      const step1 = await json('shim', 'set', 'member', 'dual_legacy_primary', '--reason', 'start dual writes');
      expect(step1).toMatchObject({ changed: true, before: { mode: 'legacy_only' }, after: { mode: 'dual_legacy_primary' }, operator: 'carol' });
      expect(step1.notes[0]).toContain('write percentage 40% -> 0%');

      // From a dual mode the next step waits for its write percentage to reach 100%.
      r = await cli('shim', 'set', 'member', 'dual_mysql_primary', '--reason', 'r');
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('gate step_complete: dual_legacy_primary is at 0% write; raise it to 100% before the next step');
      await json('gray', 'set', 'member', '--write', '100%', '--reason', 'all dual');
      await json('shim', 'set', 'member', 'dual_mysql_primary', '--reason', 'mysql primary');
      await json('gray', 'set', 'member', '--write', '100%', '--reason', 'all mysql primary');
      await json('shim', 'set', 'member', 'mysql_only', '--reason', 'done');
      await json('gray', 'set', 'member', '--write', '100%', '--reason', 'all mysql only');

      // Moving members back from MySQL-only writes is never refused, but says what legacy lacks.
      const mysqlOnly = 'member is or was mysql_only: the writes made then are in MySQL only';
      const denied = await json('gray', 'set', 'member', '--deny', '77', '--reason', 'VIP back to legacy');
      expect(denied.notes.join('\n')).toContain(mysqlOnly);
      const rolledBack = (await json('gray', 'rollback', 'member', '--reason', 'undo the write raise'))[0];
      expect([rolledBack.after.write_bp, rolledBack.notes.join('\n')]).toEqual([0, expect.stringContaining(mysqlOnly)]);
      expect((await json('gray', 'set', 'member', '--read', '10%', '--reason', 'reads only')).notes.join('\n')).not.toContain(mysqlOnly);

      // Back three steps at once, with every gate failing: never gated; the whole table is legacy_only.
      await db.query('DELETE FROM verify_runs');
      const back = await json('shim', 'set', 'member', 'legacy_only', '--reason', 'incident: roll back');
      expect(back).toMatchObject({ changed: true, before: { mode: 'mysql_only' }, after: { mode: 'legacy_only' }, gates: [] });
      expect(back.notes.join('\n')).toContain(mysqlOnly);
      expect((await json('shim', 'show', 'member'))[0]).toMatchObject({ mode: 'legacy_only' });

      const history = await json('shim', 'history', 'member');
      expect(history.map((h: { newValue: { mode: string } }) => h.newValue.mode)).toEqual(['legacy_only', 'mysql_only', 'dual_mysql_primary', 'dual_legacy_primary']);
      expect(history[0]).toMatchObject({ operator: 'carol', reason: 'incident: roll back', oldValue: { mode: 'mysql_only' }, forced: false });
      expect(history[3].oldValue).toBeNull();
      expect((await cli('shim', 'set', 'member', 'legacy_only', '--reason', 'again')).stdout).toContain('already legacy_only; nothing changed');
    } finally {
      delete process.env.MEMBERMIG_OPERATOR;
    }
  });

  it('a step back to legacy primary lists the keys holding a MySQL write legacy missed; release-held lets legacy win, only then', async () => {
    await db.query("DELETE FROM settings WHERE table_name = 'address'");
    await db.query('DELETE FROM repair_queue');
    await db.query("INSERT INTO repair_queue (table_name, pk, reason, origin, behind) VALUES ('address', '[\"7\",\"1\"]', 'shim: legacy write failed', 'shim', 'legacy')");
    for (const mode of ['dual_legacy_primary', 'dual_mysql_primary']) {
      await gatesOpen('address');
      if (mode === 'dual_mysql_primary') await json('gray', 'set', 'address', '--write', '100%', '--reason', 'ramp');
      await json('shim', 'set', 'address', mode, '--reason', 'forward');
    }
    // Under MySQL primary the held key cannot be released: legacy's older row would overwrite MySQL's.
    const early = await cli('shim', 'release-held', 'address', '--reason', 'give up');
    expect([early.code, early.stderr]).toEqual([2, expect.stringContaining('address is dual_mysql_primary, where MySQL holds the newer rows')]);
    const back = await json('shim', 'set', 'address', 'legacy_only', '--reason', 'incident');
    expect(back.notes).toContainEqual(expect.stringMatching(/^1 key\(s\) of address hold a MySQL write legacy missed .*e\.g\. \["7","1"\].*shim release-held address/));
    const released = await json('shim', 'release-held', 'address', '--reason', 'legacy wins', '--operator', 'ops-jane');
    expect(released).toMatchObject({ table: 'address', released: 1, operator: 'ops-jane' });
    const [rows] = await db.query("SELECT behind, reason FROM repair_queue WHERE table_name = 'address'");
    expect(rows).toEqual([{ behind: 'mysql', reason: "shim: legacy write failed; released by ops-jane (legacy's row wins): legacy wins" }]);
    expect((await json('shim', 'release-held', 'address', '--reason', 'again')).released).toBe(0);
    expect((await cli('shim', 'release-held', 'address')).code).toBe(2); // no reason
    await db.query('DELETE FROM repair_queue');
  });

  it('gray check explains one member', async () => {
    await gatesOpen();
    await json('gray', 'set', 'member', '--read', '100%', '--deny', '55', '--allow', '55,56', '--reason', 'r');
    const c55 = await json('gray', 'check', 'member', '55');
    expect(c55).toMatchObject({ read: 'legacy', write: 'legacy', denylisted: true, allowlisted: true });
    expect(c55.why).toContain('the denylist wins');
    const c57 = await json('gray', 'check', 'member', '57');
    expect(c57).toMatchObject({ read: 'mysql', denylisted: false });
    expect(c57.why).toMatch(/^bucket \d+: inside read 10000 bp/);
    expect((await cli('gray', 'check', 'member', '57')).stdout).toContain('member 57: reads mysql');
  });

  it('prints readable tables for people', async () => {
    await gatesOpen();
    await json('gray', 'set', 'member', '--read', '0.05%', '--reason', 'people view', '--operator', 'dave');
    expect((await cli('gray', 'show', 'member')).stdout).toMatch(/^member\s+\w+\s+0\.05%/m);
    const history = (await cli('gray', 'history', 'member', '--limit', '1')).stdout;
    expect(history).toMatch(/member\s+set\s+read [\d.]+% write [\d.]+%.*\s+read 0\.05% write [\d.]+%.*dave\s+people view/);
    expect((await cli('shim', 'history', 'member', '--limit', '1')).stdout).toContain('legacy_only');
    expect((await cli('shim', 'show')).stdout).toMatch(/^address\s+legacy_only/m);
    expect((await cli('gray', 'history', 'member', '--limit', 'x')).stderr).toContain('--limit must be a positive integer');
  });

  it('status shows the shim mode and gray percentages of every table', async () => {
    await gatesOpen();
    await json('gray', 'set', 'member', '--read', '12.5%', '--reason', 'status');
    const r = await cli('status', '--json');
    expect(r.code, r.stderr).toBe(0);
    const gray = JSON.parse(r.stdout).result.gray;
    expect(gray.settingsVersion).toBeGreaterThan(0);
    expect(gray.tables.find((t: { table: string }) => t.table === 'member')).toMatchObject({ read: '12.5%', readBp: 1250, shimRepairsOpen: 0 });
    expect((await cli('status')).stdout).toMatch(/^member\s.*\s12\.5% \/ \d+(\.\d+)?%/m);
  });

  it('concurrent gray set lose no update: every change lands and the history chains', async () => {
    await gatesOpen('address');
    await json('gray', 'rollback', 'address', '--to', '0');
    const stores = Array.from({ length: 6 }, () => openControlStore(env.config, 1));
    try {
      await Promise.all([
        ...stores.map((store, i) => setGray(store, env.config, 'address', { allow: [`${900 + i}`] }, { operator: `op${i}`, reason: 'concurrent' })),
        cli('gray', 'set', 'address', '--read', '2%', '--reason', 'concurrent cli'),
        cli('gray', 'set', 'address', '--write', '1%', '--reason', 'concurrent cli'),
      ]);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
    const [view] = await json('gray', 'show', 'address');
    expect(view).toMatchObject({ readBp: 200, writeBp: 100, allow: ['900', '901', '902', '903', '904', '905'] });
    const history = (await json('gray', 'history', 'address', '--limit', '8')).reverse();
    expect(history).toHaveLength(8);
    for (let i = 1; i < history.length; i++) expect(history[i].oldValue).toEqual(history[i - 1].newValue);
  });
});
