import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { connectMysql } from '../src/mysql/connect.js';
import { runCli, spawnCli } from './support/cli.js';
import { checkGates } from '../src/gray/gates.js';
import type { Pool } from 'mysql2/promise';
import { createTestEnv, type TestEnv } from './support/env.js';
import { captureLegacy, kafkaClient, kafkaServices, rewriteConfig, waitForMessages, type LegacyCapture } from './services/kafka-env.js';
import { compareWithLegacy } from './support/compare.js';


/**
 * End to end on real servers: writes on the legacy MariaDB, captured by real Debezium into the
 * shared Kafka, applied by `membermig sync` to 8 shards on two servers, compared row by row.
 */

const MEMBER_DDL = `CREATE TABLE member (
  member_id BIGINT NOT NULL PRIMARY KEY,
  name VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  points DECIMAL(18,2) NULL,
  big BIGINT UNSIGNED NULL,
  born DATE NULL,
  updated_at DATETIME(6) NULL,
  seen TIMESTAMP(6) NULL DEFAULT NULL,
  avatar VARBINARY(16) NULL,
  score DOUBLE NULL,
  level TINYINT UNSIGNED NULL,
  note TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL
) ENGINE=InnoDB`;

const ADDRESS_DDL = `CREATE TABLE address (
  address_id INT NOT NULL PRIMARY KEY,
  member_id BIGINT NOT NULL,
  city VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL
) ENGINE=InnoDB`;

describe('membermig sync: Debezium through Kafka to the shards', () => {
  let env: TestEnv;
  let capture: LegacyCapture;
  let topics: string[];
  let legacy: Awaited<ReturnType<typeof connectMysql>>;
  /** Messages Debezium must have produced so far (row events, plus a tombstone per delete). */
  let expectedMessages = 0;

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 8 });
    topics = [`${env.prefix}.${env.legacyDb}.member`, `${env.prefix}.${env.legacyDb}.address`];
    rewriteConfig(env, {
      ...env.raw,
      tables: {
        member: { source: `${env.legacyDb}.member`, target: 'member', shard_key: 'member_id' },
        address: { source: `${env.legacyDb}.address`, target: 'address', shard_key: 'member_id' },
      },
      cdc: { kafka: { brokers: kafkaServices().brokers, topic: topics, group: `${env.prefix}-sync`, max_batch_events: 50 } },
    });
    legacy = await connectMysql(env.legacyUrl, { multipleStatements: true });
    await legacy.query(MEMBER_DDL);
    await legacy.query(ADDRESS_DDL);
    await legacy.query(
      `INSERT INTO member VALUES
        (9007199254740993, '张伟', 327.68, 18446744073709551615, '1000-01-01', '2024-03-01 12:34:56.123456', '2024-03-01 01:02:03.000001', X'00FF10', 0.1, 255, 'snapshot row'),
        (1, 'a', -25.50, 0, '2024-02-29', '0001-01-01 00:00:00.000000', NULL, X'', 1e-7, 0, NULL)`,
    );
    await legacy.query(`INSERT INTO address VALUES (1, 1, 'Zürich'), (2, 9007199254740993, '北京')`);
    expectedMessages = 4; // snapshot reads
    const init = await runCli(['init', '--config', env.configPath, '--json']);
    expect(init.code, init.stderr + init.stdout).toBe(0);
    capture = await captureLegacy(env, ['member', 'address']);
    // The snapshot's reads are out: later writes are streamed from the binlog as c/u/d events.
    await waitForMessages(topics, expectedMessages);
  });

  afterAll(async () => {
    await capture?.stop();
    await legacy?.end();
    await env?.cleanup();
  });

  async function syncUntilCaughtUp(...extra: string[]) {
    await waitForMessages(topics, expectedMessages);
    const res = await runCli(['sync', '--config', env.configPath, '--json', '--until-caught-up', ...extra]);
    return { ...res, result: res.stdout ? JSON.parse(res.stdout).result : undefined };
  }

  it('applies the snapshot and then inserts, updates, deletes, a key change and a shard-key change, exactly', async () => {
    await legacy.query(
      `INSERT INTO member (member_id, name, points, updated_at, note) VALUES (2, 'b', 0.01, '2024-01-01 00:00:00.5', 'x'), (3, 'c', -0.01, NULL, NULL);
       UPDATE member SET points = 99999999999999.99, note = 'upd' WHERE member_id = 1;
       UPDATE member SET member_id = 4 WHERE member_id = 3;
       DELETE FROM member WHERE member_id = 2;
       UPDATE address SET member_id = 9007199254740993, city = 'moved' WHERE address_id = 1;
       INSERT INTO address VALUES (3, 4, 'x');`,
    );
    // 2 inserts, 1 update, PK change (d + tombstone + c), delete (d + tombstone), address update, address insert
    expectedMessages += 2 + 1 + 3 + 2 + 1 + 1;
    const res = await syncUntilCaughtUp();
    expect(res.code, res.stderr).toBe(0);
    expect(res.result.stoppedBy).toBe('caught-up');
    expect(res.result.tombstones).toBe(2);
    expect(res.result.deadLettered).toBe(0);

    for (const [table, key] of [['member', 'member_id'], ['address', 'address_id']] as const) {
      const cmp = await compareWithLegacy(env, table, { key, shardKey: 'member_id' });
      expect(cmp.differences).toEqual([]);
      expect(cmp.shardRows).toBe(cmp.legacyRows);
    }
    const cmp = await compareWithLegacy(env, 'member', { key: 'member_id', shardKey: 'member_id' });
    expect(cmp.legacyRows).toBe(3); // 9007199254740993, 1, 4
  });

  it('a second run with nothing new applies nothing and exits 0; status shows the lag per partition', async () => {
    const res = await syncUntilCaughtUp();
    expect(res.code, res.stderr).toBe(0);
    expect(res.result.eventsApplied).toBe(0);
    const status = await runCli(['status', '--config', env.configPath, '--json']);
    expect(status.code, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout).result;
    expect(s.sync.deadLetters.open).toBe(0);
    const partitions = s.sync.partitions.filter((p: { group: string }) => p.group === `${env.prefix}-sync`);
    expect(partitions.length).toBeGreaterThan(0);
    for (const p of partitions) expect(p.lagMessages).toBe(0);
  });

  it("with tables.NAME.updated_at, a delete keeps a row the shard holds with a newer time than its before image, and the run says so", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'membermig-cfg-'));
    const stamped = join(dir, 'stamped.yaml');
    const tables = env.raw.tables as Record<string, Record<string, unknown>>;
    writeFileSync(stamped, stringify({ ...env.raw, tables: { ...tables, member: { ...tables.member, updated_at: 'updated_at' } } }));
    await legacy.query("INSERT INTO member (member_id, name, updated_at) VALUES (50, 'kept', '2024-05-01 00:00:00'), (51, 'gone', '2024-05-01 00:00:00')");
    expectedMessages += 2;
    expect((await syncUntilCaughtUp()).code).toBe(0);
    const map = (await import('../src/shard/map.js')).shardMapFromConfig(env.config);
    const at = map.locate('50');
    const shard = await connectMysql(at.server.primary);
    try {
      // MySQL holds a newer write of 50 (a member writing MySQL first), then legacy deletes both.
      await shard.query(`UPDATE \`${at.database}\`.member SET updated_at = '2030-01-01 00:00:00' WHERE member_id = 50`);
      await legacy.query('DELETE FROM member WHERE member_id IN (50, 51)');
      expectedMessages += 4; // two deletes, two tombstones
      await waitForMessages(topics, expectedMessages);
      const res = await runCli(['sync', '--config', stamped, '--json', '--until-caught-up']);
      expect(res.code, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout).result.deletesKept).toEqual({ member: 1 });
      expect(res.stderr).toContain('a delete kept a row the shard holds with a newer updated_at');
      expect(res.stderr).toContain('"keys":[["50"]]');
      const left = (await shard.query(`SELECT member_id FROM \`${at.database}\`.member WHERE member_id IN (50, 51)`))[0] as { member_id: string }[];
      expect(left.map((r) => String(r.member_id))).toEqual(['50']);
      const human = await runCli(['sync', '--config', stamped, '--until-caught-up']);
      expect(human.stdout).not.toContain('kept a row'); // nothing new kept in this run
    } finally {
      // The later tests compare the shards with legacy.
      await shard.query(`DELETE FROM \`${at.database}\`.member WHERE member_id = 50`);
      await shard.end();
    }
  });

  it("holds a key whose legacy row is behind MySQL (repair_queue): legacy's older row does not undo MySQL's write; applied again once resolved", async () => {
    const map = (await import('../src/shard/map.js')).shardMapFromConfig(env.config);
    const at = map.locate('1');
    const shard = await connectMysql(at.server.primary);
    const control = await connectMysql(env.config.control.url);
    const nameOnShard = async () => ((await shard.query(`SELECT name FROM \`${at.database}\`.member WHERE member_id = 1`))[0] as { name: string }[])[0]!.name;
    try {
      // A MySQL-primary write whose legacy write failed: MySQL has it, legacy does not; the shim queued the key.
      await shard.query(`UPDATE \`${at.database}\`.member SET name = 'only in mysql' WHERE member_id = 1`);
      await control.query("INSERT INTO repair_queue (table_name, pk, reason, origin, behind) VALUES ('member', '{\"member_id\":\"1\"}', 'shim: legacy write failed', 'shim', 'legacy')");
      // A later write reaches legacy too: its event carries legacy's whole row, with the older name.
      await legacy.query("UPDATE member SET note = 'later write' WHERE member_id = 1");
      expectedMessages += 1;
      let res = await syncUntilCaughtUp();
      expect(res.code, res.stderr).toBe(0);
      expect(await nameOnShard()).toBe('only in mysql');
      expect(res.result.eventsApplied).toBe(0); // held, not applied
      // Legacy brought up to date by hand and the entry resolved: its changes apply again.
      await control.query("UPDATE repair_queue SET resolved_at = NOW(6) WHERE table_name = 'member'");
      await legacy.query("UPDATE member SET name = 'only in mysql', note = 'fixed by hand' WHERE member_id = 1");
      expectedMessages += 1;
      res = await syncUntilCaughtUp();
      expect(res.code, res.stderr).toBe(0);
      const cmp = await compareWithLegacy(env, 'member', { key: 'member_id', shardKey: 'member_id' });
      expect(cmp.differences).toEqual([]);
    } finally {
      await control.query("DELETE FROM repair_queue WHERE table_name = 'member'");
      await control.end();
      await shard.end();
    }
  });

  it("with tables.NAME.updated_at, legacy's event of a dual write that arrives after a newer MySQL write leaves the newer row (no step back)", async () => {
    await syncUntilCaughtUp();
    const raw = structuredClone(env.raw) as { tables: Record<string, Record<string, unknown>> };
    raw.tables.member!.updated_at = 'updated_at';
    const stamped = env.configPath.replace(/\.yaml$/, '-updated-at.yaml');
    writeFileSync(stamped, stringify(raw));
    const sync = async () => {
      await waitForMessages(topics, expectedMessages);
      const res = await runCli(['sync', '--config', stamped, '--json', '--until-caught-up']);
      expect(res.code, res.stderr).toBe(0);
    };
    const id = '9007199254740993';
    const at = (await import('../src/shard/map.js')).shardMapFromConfig(env.config).locate(id);
    const shard = await connectMysql(at.server.primary);
    const onShard = async () => ((await shard.query(`SELECT note, updated_at FROM \`${at.database}\`.member WHERE member_id = ${id}`))[0] as { note: string; updated_at: string }[])[0]!;
    try {
      // A shim's dual write reaches legacy (its event still on the way), then the member's next write reaches MySQL.
      await legacy.query(`UPDATE member SET note = 'write 1', updated_at = '2030-01-01 00:00:01.000001' WHERE member_id = ${id}`);
      await shard.query(`UPDATE \`${at.database}\`.member SET note = 'write 2', updated_at = '2030-01-01 00:00:02' WHERE member_id = ${id}`);
      expectedMessages += 1;
      await sync();
      expect(await onShard()).toEqual({ note: 'write 2', updated_at: '2030-01-01 00:00:02.000000' });
      // Its own event (same time) and a newer change apply.
      await legacy.query(`UPDATE member SET note = 'write 2', updated_at = '2030-01-01 00:00:02' WHERE member_id = ${id}`);
      await legacy.query(`UPDATE member SET note = 'write 3', updated_at = '2030-01-01 00:00:03' WHERE member_id = ${id}`);
      expectedMessages += 2;
      await sync();
      expect(await onShard()).toEqual({ note: 'write 3', updated_at: '2030-01-01 00:00:03.000000' });
      // A change without a time cannot be told older: it applies.
      await legacy.query(`UPDATE member SET note = 'no time', updated_at = NULL WHERE member_id = ${id}`);
      expectedMessages += 1;
      await sync();
      expect(await onShard()).toEqual({ note: 'no time', updated_at: null });
      const cmp = await compareWithLegacy(env, 'member', { key: 'member_id', shardKey: 'member_id' });
      expect(cmp.differences).toEqual([]);
    } finally {
      await shard.end();
    }
  });

  it('a running sync keeps quiet partitions fresh: the gray gate reads an idle, caught-up sync as no lag', async () => {
    await syncUntilCaughtUp();
    const child = spawnCli(['sync', '--config', env.configPath, '--log-level', 'warn']);
    child.stdout!.resume();
    child.stderr!.resume();
    const closed = new Promise((resolve) => child.on('close', resolve));
    const control = await connectMysql(env.config.control.url);
    try {
      // Nothing is produced meanwhile: longer than the gate's 5 s, the mirror would age without the refresh.
      await new Promise((r) => setTimeout(r, 8000));
      const gate = (await checkGates(control as unknown as Pool, env.config, 'member')).find((g) => g.gate === 'sync_lag')!;
      expect(gate, gate.message).toMatchObject({ ok: true });
    } finally {
      await control.end();
      child.kill('SIGTERM');
      await closed;
    }
  }, 60_000);

  it('with cdc.kafka.connect, a paused connector (quiet topics, sync caught up with them) shuts the sync_lag gate and status names it', async () => {
    await syncUntilCaughtUp();
    const { connectUrl } = kafkaServices();
    // Credentials in the URL travel as basic auth (Connect here has none and ignores them), never in a message.
    const withAuth = new URL(connectUrl);
    withAuth.username = 'ops';
    withAuth.password = 'pw-c0nnect-s3cret';
    const configWith = (connect: { url: string; connectors: string[] }) => ({ ...env.config, cdc: { kafka: { ...env.config.cdc!.kafka!, connect } } }) as typeof env.config;
    const dir = mkdtempSync(join(tmpdir(), 'membermig-cfg-'));
    const withConnect = join(dir, 'with-connect.yaml');
    writeFileSync(withConnect, stringify({ ...env.raw, cdc: { kafka: { ...(env.raw.cdc as { kafka: object }).kafka, connect: { url: withAuth.href, connectors: [capture.connector] } } } }));
    // The running sync watches the connector too, and warns when it stops filling the topics.
    const child = spawnCli(['sync', '--config', withConnect, '--log-level', 'warn']);
    let syncLog = '';
    child.stdout!.resume();
    child.stderr!.on('data', (d: Buffer) => (syncLog += d.toString()));
    const closed = new Promise((resolve) => child.on('close', resolve));
    const control = await connectMysql(env.config.control.url);
    const lagGate = async (connect: { url: string; connectors: string[] }) =>
      (await checkGates(control as unknown as Pool, configWith(connect), 'member')).find((g) => g.gate === 'sync_lag')!;
    const connectorState = async () => ((await (await fetch(`${connectUrl}/connectors/${capture.connector}/status`)).json()) as { connector: { state: string } }).connector.state;
    try {
      // Until the running sync reports (every 2 s once it has joined the group; later on a busy machine).
      let running = await lagGate({ url: withAuth.href, connectors: [capture.connector] });
      for (const deadline = Date.now() + 30_000; !running.ok && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 500));
        running = await lagGate({ url: withAuth.href, connectors: [capture.connector] });
      }
      expect(running, running.message).toMatchObject({ ok: true, message: expect.stringContaining(`; connectors ${capture.connector} running`) });
      expect((await lagGate({ url: connectUrl, connectors: [capture.connector] })).ok).toBe(true);
      // Without the setting the gate says it did not look.
      expect((await checkGates(control as unknown as Pool, env.config, 'member')).find((g) => g.gate === 'sync_lag')!.message).toContain('connectors not checked (set cdc.kafka.connect)');

      await fetch(`${connectUrl}/connectors/${capture.connector}/pause`, { method: 'PUT' });
      for (const deadline = Date.now() + 30_000; (await connectorState()) !== 'PAUSED'; ) {
        if (Date.now() > deadline) throw new Error('connector did not pause');
        await new Promise((r) => setTimeout(r, 200));
      }
      // Changes made while it is paused wait in legacy's binlog.
      await legacy.query(`INSERT INTO member (member_id, name) VALUES ${Array.from({ length: 20 }, (_, i) => `(${700_000 + i}, 'paused ${i}')`).join(', ')}`);
      expectedMessages += 20;
      const quiet = `legacy's changes do not reach the topics, so sync looks caught up with them`;
      const paused = await lagGate({ url: withAuth.href, connectors: [capture.connector] });
      expect(paused).toEqual({
        gate: 'sync_lag',
        ok: false,
        message: `connector ${capture.connector} is PAUSED: ${quiet}; the lag is unknown; resume it (PUT /connectors/${capture.connector}/resume on Kafka Connect), then verify`,
      });
      const status = await runCli(['status', '--config', withConnect]);
      expect(status.stdout).toContain(`connector ${capture.connector} is PAUSED: ${quiet}`);
      // A runbook step or CI gate on `status` stops here: the connector is down.
      expect(status.code).toBe(1);
      const statusJson = JSON.parse((await runCli(['status', '--config', withConnect, '--json'])).stdout);
      expect(statusJson.result.sync.connectors).toEqual([{ name: capture.connector, state: 'PAUSED', tasks: expect.any(Array), problem: `connector ${capture.connector} is PAUSED` }]);

      // sync --until-caught-up is caught up only with the topics: it says so, and exits 1.
      const caughtUp = await runCli(['sync', '--config', withConnect, '--until-caught-up', '--json']);
      expect(caughtUp.code, caughtUp.stderr).toBe(1);
      expect(JSON.parse(caughtUp.stdout).result.connectorsDown).toEqual([`connector ${capture.connector} is PAUSED`]);

      // The running sync warns, and records the outage.
      const openOutages = async () => Number(((await control.query('SELECT COUNT(*) AS n FROM cdc_connector_outages WHERE ended_at IS NULL'))[0] as { n: number }[])[0]!.n);
      for (const deadline = Date.now() + 20_000; !syncLog.includes(`connector ${capture.connector} is PAUSED: ${quiet}`) || (await openOutages()) !== 1; ) {
        if (Date.now() > deadline) throw new Error(`the running sync did not warn about the paused connector, or record it: ${syncLog}`);
        await new Promise((r) => setTimeout(r, 200));
      }

      // A name Connect does not know, and a Connect that does not answer: unknown, so shut.
      expect((await lagGate({ url: connectUrl, connectors: ['no-such-connector'] })).message).toBe(
        `connector no-such-connector does not exist on Kafka Connect at ${connectUrl}: ${quiet}; the lag is unknown; create it, or name the connector that fills the topics in cdc.kafka.connect.connectors, then verify`,
      );
      const closedPort = `http://ops:pw-c0nnect-s3cret@127.0.0.1:2`;
      const unreachable = await lagGate({ url: closedPort, connectors: [capture.connector] });
      expect(unreachable).toMatchObject({ ok: false, message: expect.stringMatching(/^Kafka Connect at http:\/\/127\.0\.0\.1:2 did not answer \(ECONNREFUSED\), so the state of connector \S+ is unknown: /) });
      expect(unreachable.message).not.toContain('pw-c0nnect-s3cret');

      // Resumed: RUNNING again, and sync soon caught up with the topics, but Debezium sends the paused
      // time's changes only as it catches up: the gate stays shut until a verify begun after the outage is clean.
      await fetch(`${connectUrl}/connectors/${capture.connector}/resume`, { method: 'PUT' });
      for (const deadline = Date.now() + 30_000; (await openOutages()) !== 0; ) {
        if (Date.now() > deadline) throw new Error(`the running sync did not record the connector running again: ${syncLog}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(await lagGate({ url: withAuth.href, connectors: [capture.connector] })).toMatchObject({
        ok: false,
        message: expect.stringMatching(
          new RegExp(`^connector ${capture.connector} was not running from \\S+Z to \\S+Z \\(connector ${capture.connector} is PAUSED\\): the changes made then reached the topics only as it caught up, which the topics cannot show; a clean verify of member begun after that proves the shards have them \\(membermig verify --tables member\\)$`),
        ),
      });
      expect((await runCli(['status', '--config', withConnect])).stdout).toMatch(
        new RegExp(`connector ${capture.connector} was last not running from \\S+Z to \\S+Z \\(connector ${capture.connector} is PAUSED\\): the gray gate wants a clean verify begun after that`),
      );
      await waitForMessages(topics, expectedMessages);
      for (const deadline = Date.now() + 30_000; (await compareWithLegacy(env, 'member', { key: 'member_id', shardKey: 'member_id' })).differences.length > 0; ) {
        if (Date.now() > deadline) throw new Error('the paused time\'s rows did not reach the shards');
        await new Promise((r) => setTimeout(r, 500));
      }
      const verify = await runCli(['verify', '--config', withConnect, '--tables', 'member', '--json']);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
      const reopened = await lagGate({ url: withAuth.href, connectors: [capture.connector] });
      expect(reopened, reopened.message).toMatchObject({ ok: true, message: expect.stringContaining(`; connectors ${capture.connector} running`) });
      expect(status.stdout + status.stderr + syncLog).not.toContain('pw-c0nnect-s3cret');
    } finally {
      // The later tests need the connector streaming.
      await fetch(`${connectUrl}/connectors/${capture.connector}/resume`, { method: 'PUT' });
      for (const deadline = Date.now() + 30_000; (await connectorState()) !== 'RUNNING' && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 200));
      await control.query('DELETE FROM cdc_connector_outages');
      await control.end();
      child.kill('SIGTERM');
      await closed;
    }
  }, 120_000);

  it('refuses (exit 2, nothing applied) without a change source in the config, or when the topic does not exist', async () => {
    const { cdc: _cdc, ...withoutCdc } = env.raw as Record<string, unknown>;
    const dir = mkdtempSync(join(tmpdir(), 'membermig-cfg-'));
    const noCdc = join(dir, 'no-cdc.yaml');
    writeFileSync(noCdc, stringify(withoutCdc));
    const a = await runCli(['sync', '--config', noCdc, '--until-caught-up']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('sync needs a change source in the config: cdc.kafka');
    const badTopic = join(dir, 'bad-topic.yaml');
    writeFileSync(badTopic, stringify({ ...withoutCdc, cdc: { kafka: { brokers: kafkaServices().brokers, topic: `${env.prefix}.nope`, group: `${env.prefix}-x` } } }));
    const b = await runCli(['sync', '--config', badTopic, '--until-caught-up']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain(`topic ${env.prefix}.nope does not exist`);
    // status names the topic too, rather than taking the broker for one it cannot ask.
    const status = await runCli(['status', '--config', badTopic, '--json']);
    // Sync cannot start: a problem (exit 1), named in result.problems.
    expect(status.code, status.stderr).toBe(1);
    expect(JSON.parse(status.stdout).result.problems).toContain(`topic ${env.prefix}.nope does not exist on the broker (cdc.kafka.topic)`);
    expect(JSON.parse(status.stdout).result.sync.kafka).toMatchObject({ reachable: true, missingTopics: [`${env.prefix}.nope`] });
    expect((await runCli(['status', '--config', badTopic])).stdout).toContain(`topic ${env.prefix}.nope does not exist on the broker (cdc.kafka.topic)`);
  });

  it('refuses (exit 2) a shard table with a unique index besides the primary key: an upsert by key would overwrite another row', async () => {
    const shard = await connectMysql(env.urls.shardA);
    const [dbs] = await shard.query('SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ? ORDER BY 1 LIMIT 1', [`${env.prefix}\\_s%`]);
    const db = (dbs as { n: string }[])[0]!.n;
    await shard.query(`ALTER TABLE \`${db}\`.member ADD UNIQUE KEY uq_name (name)`);
    try {
      const r = await runCli(['sync', '--config', env.configPath, '--until-caught-up']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`shard table ${db}.member on server`);
      expect(r.stderr).toContain('has UNIQUE index uq_name (name)');
    } finally {
      await shard.query(`ALTER TABLE \`${db}\`.member DROP INDEX uq_name`);
      await shard.end();
    }
  });

  it('refuses a compacted change topic (exit 2): compaction drops delete events and shard moves', async () => {
    const topic = `${env.prefix}.compacted`;
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
    const dir = mkdtempSync(join(tmpdir(), 'membermig-cfg-'));
    const config = join(dir, 'compacted.yaml');
    writeFileSync(config, stringify({ ...(env.raw as Record<string, unknown>), cdc: { kafka: { brokers: kafkaServices().brokers, topic, group: `${env.prefix}-compacted` } } }));
    const r = await runCli(['sync', '--config', config, '--until-caught-up']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`topic ${topic} is compacted (cleanup.policy=compact)`);
  });

  it('stops with a clear error when the group is behind what the broker keeps (changes deleted by retention), applying nothing', async () => {
    const topic = `${env.prefix}.gap`;
    const group = `${env.prefix}-gap`;
    const admin = kafkaClient().admin();
    const producer = kafkaClient().producer();
    await Promise.all([admin.connect(), producer.connect()]);
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
      const source = { connector: 'mariadb', db: env.legacyDb, table: 'member', ts_ms: Date.now() };
      const row = (id: number) => ({ member_id: id, name: `gap ${id}`, points: null, big: null, born: null, updated_at: null, seen: null, avatar: null, score: null, level: null, note: null });
      // Offset 4 deletes a key no copy has: going on from there applies it and leaves nothing behind.
      const event = (i: number) => (i === 5 ? { op: 'd', before: row(9000 + i), after: null, source } : { op: 'c', after: row(9000 + i), source });
      await producer.send({ topic, messages: [1, 2, 3, 4, 5].map((i) => ({ partition: 0, key: `{"member_id":${9000 + i}}`, value: JSON.stringify(event(i)) })) });
      // The group had applied offset 0 only; retention then removed offsets 0-2.
      await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '1' }] });
      await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '3' }] });
      const dir = mkdtempSync(join(tmpdir(), 'membermig-cfg-'));
      const config = join(dir, 'gap.yaml');
      writeFileSync(config, stringify({ ...(env.raw as Record<string, unknown>), cdc: { kafka: { brokers: kafkaServices().brokers, topic, group } } }));
      const r = await runCli(['sync', '--config', config, '--until-caught-up', '--json']);
      expect(r.code).not.toBe(0);
      expect(r.stderr + r.stdout).toContain(`consumer group ${group} is behind what the broker keeps: ${topic}[0] at offset 1, oldest kept 3`);
      const cmp = await compareWithLegacy(env, 'member', { key: 'member_id', shardKey: 'member_id' });
      expect(cmp.differences.filter((d) => d.includes(' 900'))).toEqual([]);

      // status asks the broker: the gap, and the lag as it is now, where sync's last report (as a sync that
      // ran until retention passed it would have left) said caught up.
      const control = await connectMysql(env.config.control.url);
      // Its last applied event a day old: the events behind came after the report, not a day ago.
      await control.query('INSERT INTO cdc_offsets (consumer_group, topic, partition_no, next_offset, high_watermark, last_source_ts_ms, applied_events) VALUES (?, ?, 0, 1, 1, ?, 1)', [group, topic, Date.now() - 86_400_000]);
      const status = await runCli(['status', '--config', config, '--json']);
      // Changes deleted by retention: a problem (exit 1), named.
      expect(status.code, status.stderr).toBe(1);
      expect(JSON.parse(status.stdout).result.problems).toContain(
        `${topic}[0]: consumer group ${group} is at offset 1, the broker keeps from 3: changes were deleted by retention`,
      );
      const sync = JSON.parse(status.stdout).result.sync;
      expect(sync.kafka).toEqual({ reachable: true, group, retentionGaps: [{ topic, partition: 0, nextOffset: 1, oldestKept: 3 }], missingTopics: [] });
      const partition = sync.partitions.find((p: { group: string }) => p.group === group);
      expect(partition).toMatchObject({ nextOffset: 1, highWatermark: 5, lagMessages: 4 });
      expect(partition.lagSeconds).toBeLessThan(600);
      const human = await runCli(['status', '--config', config]);
      expect(human.stdout).toContain(`${topic}[0]: consumer group ${group} is at offset 1, but the broker keeps from 3: the changes in between were deleted (retention)`);
      // A broker that does not answer: the mirror alone, saying so.
      const unreachable = join(dir, 'unreachable.yaml');
      writeFileSync(unreachable, stringify({ ...(env.raw as Record<string, unknown>), cdc: { kafka: { brokers: ['127.0.0.1:1'], topic, group } } }));
      const blind = await runCli(['status', '--config', unreachable]);
      // A broker status cannot ask is said, and is not itself a problem (sync's own run reports one).
      const blindProblems: string[] = JSON.parse((await runCli(['status', '--config', unreachable, '--json'])).stdout).result.problems;
      expect(blindProblems.filter((p) => /Kafka|127\.0\.0\.1:1/.test(p))).toEqual([]);
      expect(blind.stdout).toContain("could not ask Kafka at 127.0.0.1:1 (cdc.kafka.brokers)");
      expect(blind.stdout).toContain("lag events are as of sync's last report");

      // full --restart copies the tables again and records the topic's end (offset 4): its copy holds every
      // change before that, so sync now goes on from there instead of refusing for good.
      try {
        const [job] = await control.query("INSERT INTO jobs (kind, name, state, options) VALUES ('full', 'member,address', 'done', '{\"tables\":[\"address\",\"member\"],\"emptied\":true}')");
        const jobId = (job as { insertId: number }).insertId;
        await control.query("INSERT INTO cdc_start_positions (job_id, source_kind, position) VALUES (?, 'kafka', ?)", [jobId, JSON.stringify({ topic, offsets: { 0: '4' } })]);
        try {
          const again = await runCli(['sync', '--config', config, '--until-caught-up', '--json']);
          expect(again.code, again.stderr).toBe(0);
          expect(again.stderr).toContain('retention passed the group position; a later full --restart copied the tables again: going on from the offsets it recorded');
          expect((await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]!.partitions[0]!.offset).toBe('5');
          expect((await compareWithLegacy(env, 'member', { key: 'member_id', shardKey: 'member_id' })).differences.filter((d) => d.includes(' 900'))).toEqual([]);
        } finally {
          await control.query('DELETE FROM cdc_start_positions WHERE job_id = ?', [jobId]);
          await control.query('DELETE FROM jobs WHERE id = ?', [jobId]);
          await control.query('DELETE FROM cdc_offsets WHERE consumer_group = ?', [group]);
        }
      } finally {
        await control.end();
      }
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  });

  it('a new group with no start position recorded is refused when the broker no longer keeps a partition\'s first events', async () => {
    const topic = `${env.prefix}.gap-fresh`;
    const group = `${env.prefix}-gap-fresh`;
    const admin = kafkaClient().admin();
    const producer = kafkaClient().producer();
    await Promise.all([admin.connect(), producer.connect()]);
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
      await producer.send({ topic, messages: [1, 2, 3].map((i) => ({ partition: 0, key: `k${i}`, value: 'not applied' })) });
      // Retention removed offsets 0-1; no full job recorded where this topic starts (Kafka was away), nothing committed.
      // Asked again on a failure: a partition just written to has at times refused it once ("Error while deleting records").
      for (let tries = 1; ; tries++) {
        const deleted = await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '2' }] }).then(() => true, (e: Error) => (tries < 10 ? false : Promise.reject(e)));
        if (deleted) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      const dir = mkdtempSync(join(tmpdir(), 'membermig-cfg-'));
      const config = join(dir, 'gap-fresh.yaml');
      writeFileSync(config, stringify({ ...(env.raw as Record<string, unknown>), cdc: { kafka: { brokers: kafkaServices().brokers, topic, group } } }));
      const r = await runCli(['sync', '--config', config, '--until-caught-up']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`consumer group ${group} is behind what the broker keeps: ${topic}[0] with nothing committed and no start position recorded by full, oldest kept 2`);
      expect((await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]!.partitions[0]!.offset).toBe('-1'); // nothing consumed
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  });

  it('dead-letters malformed and out-of-contract events with topic, partition, offset, key and reason; retries them after a fix', async () => {
    const producer = kafkaClient().producer();
    await producer.connect();
    const topic = topics[0]!;
    const source = { connector: 'mariadb', db: env.legacyDb, table: 'member', ts_ms: Date.now() };
    const good = { member_id: 77, name: 'n', points: 'AIAA', big: null, born: null, updated_at: null, seen: null, avatar: null, score: null, level: null, note: null };
    // 10^16 at scale 2 does not fit DECIMAL(18,2): the shard refuses it (strict mode), it is not bent.
    const tooBig = Buffer.from((10n ** 18n).toString(16).padStart(16, '0'), 'hex').toString('base64');
    await producer.send({
      topic,
      messages: [
        { partition: 0, key: '{"member_id":70}', value: '{not json' },
        { partition: 0, key: '{"member_id":71}', value: '{"hello":"world"}' },
        { partition: 0, key: '{"member_id":72}', value: JSON.stringify({ op: 'c', after: good, source: { ...source, table: 'nope' } }) },
        { partition: 0, key: '{}', value: JSON.stringify({ op: 'c', after: { ...good, member_id: null }, source }) },
        { partition: 0, key: '{"member_id":77}', value: JSON.stringify({ op: 'c', after: { ...good, points: tooBig }, source }) },
        { partition: 0, key: '{"member_id":78}', value: null },
      ],
    });
    await producer.disconnect();
    expectedMessages += 6;
    const res = await syncUntilCaughtUp();
    expect(res.code, res.stderr).toBe(1);
    expect(res.result.deadLettered).toBe(5);
    expect(res.result.deadLetters.open).toBe(5);

    const control = await connectMysql(env.config.control.url);
    const [rows] = await control.query('SELECT source, partition_no, offset_no, table_name, message_key, raw_value, reason FROM dead_letters ORDER BY CAST(offset_no AS UNSIGNED)');
    const dl = rows as { source: string; partition_no: number; offset_no: string; table_name: string | null; message_key: Buffer; raw_value: Buffer; reason: string }[];
    expect(dl.map((d) => d.source)).toEqual(Array(5).fill(topic));
    expect(dl.every((d) => d.partition_no === 0)).toBe(true);
    expect(dl[0]!.raw_value.toString()).toBe('{not json');
    expect(dl[0]!.message_key.toString()).toBe('{"member_id":70}');
    expect(dl.map((d) => d.reason)).toEqual([
      expect.stringMatching(/not JSON/),
      expect.stringMatching(/not a Debezium change event/),
      expect.stringMatching(/unknown table .*\.nope/),
      expect.stringMatching(/key column member_id is missing or null/),
      expect.stringMatching(/refused the upsert: .*[Oo]ut of range/),
    ]);
    expect(dl[4]!.table_name).toBe('member');

    const status = JSON.parse((await runCli(['status', '--config', env.configPath, '--json'])).stdout).result;
    expect(status.sync.deadLetters.open).toBe(5);

    // The fix: widen points on the legacy table and in every shard, then replay.
    await legacy.query('ALTER TABLE member MODIFY points DECIMAL(22,2) NULL');
    for (const url of [env.urls.shardA, env.urls.shardB]) {
      const conn = await connectMysql(url);
      const [dbs] = await conn.query('SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${env.prefix}\\_s%`]);
      for (const { n } of dbs as { n: string }[]) await conn.query(`ALTER TABLE \`${n}\`.member MODIFY points DECIMAL(22,2) NULL`);
      await conn.end();
    }
    // Meanwhile member 77 moved on in legacy, and that change is applied: the dead letter's image is stale.
    await legacy.query("INSERT INTO member (member_id, name, points) VALUES (77, 'newer', 5.00)");
    expectedMessages += 1;
    expect((await syncUntilCaughtUp()).result.deadLetters.open).toBe(5);
    const retry = await syncUntilCaughtUp('--retry-dead-letters');
    expect(retry.result.retried).toEqual({ resolved: 1, stillFailing: 4 });
    expect(retry.code).toBe(1);
    // The retry copied member 77 again from legacy instead of applying its stale image (10^16 points).
    const cmp = await compareWithLegacy(env, 'member', { key: 'member_id', shardKey: 'member_id' });
    expect(cmp.differences).toEqual([]);
    const [after] = await control.query('SELECT COUNT(*) AS n FROM dead_letters WHERE resolved_at IS NULL');
    expect(Number((after as { n: number }[])[0]!.n)).toBe(4);
    await control.end();

    // The four left can never apply: an operator lists them with their reasons and skips them, on the record.
    const listed = await runCli(['sync', 'dead-letters', '--config', env.configPath, '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const open = JSON.parse(listed.stdout).result.deadLetters as { id: number; source: string; partition: number; offset: string; table: string | null; reason: string; skipped: unknown }[];
    expect(open).toHaveLength(4);
    expect(open.map((d) => d.reason).sort()[0]).toMatch(/key column member_id is missing or null|not JSON|not a Debezium|unknown table/);
    expect(open.every((d) => d.source === topic && d.partition === 0 && /^\d+$/.test(d.offset) && d.skipped === null)).toBe(true);
    expect((await runCli(['sync', 'dead-letters', '--config', env.configPath])).stdout).toMatch(/not JSON/);
    // --table keeps those naming no table (the gates count them for every table).
    const ofMember = JSON.parse((await runCli(['sync', 'dead-letters', '--table', 'member', '--config', env.configPath, '--json'])).stdout).result.deadLetters;
    expect(ofMember.map((d: { id: number }) => d.id).sort()).toEqual(open.filter((d) => d.table === null || d.table === 'member').map((d) => d.id).sort());
    expect(open.some((d) => d.table === null)).toBe(true);
    // A table the config does not have is refused: listing only those naming no table would hide the rest.
    const nope = await runCli(['sync', 'dead-letters', '--table', 'nope', '--config', env.configPath, '--json']);
    expect([nope.code, JSON.parse(nope.stdout).error]).toEqual([2, expect.stringContaining('unknown table "nope"')]);
    const ids = open.map((d) => d.id);
    // Refused as a whole, nothing skipped: no reason, an unknown id, one already resolved.
    expect((await runCli(['sync', 'skip-dead-letters', ids.join(','), '--config', env.configPath])).code).toBe(2);
    const unknown = await runCli(['sync', 'skip-dead-letters', `${ids[0]},999999`, '--reason', 'x', '--config', env.configPath]);
    expect([unknown.code, unknown.stderr]).toEqual([2, expect.stringContaining('no dead letter 999999')]);
    const skip = await runCli(['sync', 'skip-dead-letters', ids.join(','), '--reason', 'never a change of ours', '--operator', 'ops-jane', '--config', env.configPath, '--json']);
    expect(skip.code, skip.stderr).toBe(0);
    expect(JSON.parse(skip.stdout).result.skipped).toBe(4);
    expect((await runCli(['sync', 'skip-dead-letters', String(ids[0]), '--reason', 'again', '--config', env.configPath])).stderr).toMatch(/already resolved/);
    expect(JSON.parse((await runCli(['status', '--config', env.configPath, '--json'])).stdout).result.sync.deadLetters.open).toBe(0);
    const all = JSON.parse((await runCli(['sync', 'dead-letters', '--all', '--config', env.configPath, '--json'])).stdout).result.deadLetters as { id: number; skipped: { by: string; reason: string } | null }[];
    expect(all.filter((d) => ids.includes(d.id)).map((d) => d.skipped)).toEqual(Array(4).fill({ by: 'ops-jane', reason: 'never a change of ours' }));
    // A replay of the same events (sync from an older offset) leaves them skipped.
    expect((await syncUntilCaughtUp()).result.deadLetters.open).toBe(0);
  });
});

describe('membermig full, then sync from the start position full recorded', () => {
  let env: TestEnv;
  let capture: LegacyCapture | undefined;
  afterAll(async () => {
    await capture?.stop();
    await env?.cleanup();
  });

  it('replays only what came after the copy began, and converges', async () => {
    env = await createTestEnv({ shardCount: 8 });
    const topic = `${env.prefix}.${env.legacyDb}.member`;
    rewriteConfig(env, { ...env.raw, cdc: { kafka: { brokers: kafkaServices().brokers, topic, group: `${env.prefix}-sync` } } });
    const legacy = await connectMysql(env.legacyUrl, { multipleStatements: true });
    await legacy.query('CREATE TABLE member (member_id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL, points DECIMAL(18,2) NOT NULL)');
    const values = Array.from({ length: 300 }, (_, i) => `(${i + 1}, 'm${i + 1}', ${i}.25)`).join(', ');
    await legacy.query(`INSERT INTO member VALUES ${values}`);
    expect((await runCli(['init', '--config', env.configPath])).code).toBe(0);
    capture = await captureLegacy(env, ['member']);
    let expected = await waitForMessages([topic], 300); // the snapshot
    await legacy.query('UPDATE member SET points = points + 1 WHERE member_id <= 50; DELETE FROM member WHERE member_id > 290');
    expected = await waitForMessages([topic], expected + 50 + 20);

    const full = await runCli(['full', '--config', env.configPath, '--json']);
    expect(full.code, full.stderr.slice(-2000)).toBe(0);

    await legacy.query(
      `INSERT INTO member VALUES ${Array.from({ length: 20 }, (_, i) => `(${1000 + i}, 'n', 1.00)`).join(', ')};
       UPDATE member SET name = 'after full' WHERE member_id BETWEEN 100 AND 129;
       DELETE FROM member WHERE member_id BETWEEN 200 AND 204`,
    );
    await legacy.end();
    await waitForMessages([topic], expected + 20 + 30 + 10);
    const res = await runCli(['sync', '--config', env.configPath, '--json', '--until-caught-up']);
    expect(res.code, res.stderr.slice(-2000)).toBe(0);
    const result = JSON.parse(res.stdout).result;
    // Only the changes after the recorded position: 20 inserts, 30 updates, 5 deletes (+ 5 tombstones).
    expect(result.eventsApplied).toBe(55);
    expect(result.tombstones).toBe(5);
    const cmp = await compareWithLegacy(env, 'member', { key: 'member_id', shardKey: 'member_id' });
    expect(cmp.differences).toEqual([]);
    expect(cmp.legacyRows).toBe(290 - 5 + 20);
  }, 120_000);
});
