import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql, quoteId } from '../../src/mysql/connect.js';
import { execWithin } from '../support/faults.js';
import { stringify } from 'yaml';
import { createCopyEnv } from '../support/copy-env.js';
import type { TestEnv } from '../support/env.js';
import { freePort } from '../../src/sandbox/mariadb.js';
import { createMemberTable } from '../support/nasty.js';
import { captureLegacy, kafkaServices } from '../services/kafka-env.js';

/**
 * Secrets never leak: every server is reached as a MariaDB user whose unique password comes from
 * ${ENV} (control store, shards) and ${file:} (legacy source). init, full, verify, status and gray
 * run as processes with --json and debug logs, plus a run against a server that is not there (errors
 * carry URLs); the password must appear in no stdout, no stderr, and no text/JSON/blob column of any
 * table in the control store.
 */

const USER = `mmsec_${randomBytes(3).toString('hex')}`;
const SECRET = `Pw-${randomBytes(12).toString('hex')}-x`;

/** Writes env.raw as it is (references unresolved): parsing it here would need the secret in this process's env. */
function writeRaw(env: TestEnv): void {
  writeFileSync(env.configPath, stringify(env.raw));
}

function withCredentials(url: string, password: string): string {
  const u = new URL(url);
  u.username = USER;
  u.password = password;
  return u.toString();
}

describe('secrets from ${ENV} and ${file:} appear nowhere', () => {
  let env: TestEnv;
  let dir: string;
  const runs: [string, { stdout: string; stderr: string }][] = [];
  const childEnv = () => ({ ...process.env, MM_TEST_SECRET: SECRET });

  beforeAll(async () => {
    env = await createCopyEnv({
      shardCount: 4,
      tables: (db) => ({ member: { source: `${db}.member`, target: 'member', shard_key: 'member_id' } }),
      extra: { copy: { chunk_rows: 100, workers: 2, retries: 1, retry_base_ms: 100 }, verify: { chunk_rows: 100, workers: 2, recheck_after_seconds: 0 } },
    });
    await createMemberTable(env.legacyUrl, 300);
    for (const url of new Set(Object.values(env.urls))) {
      const conn = await connectMysql(url);
      await conn.query(`CREATE USER IF NOT EXISTS ?@'%' IDENTIFIED BY ?`, [USER, SECRET]);
      await conn.query(`CREATE USER IF NOT EXISTS ?@'127.0.0.1' IDENTIFIED BY ?`, [USER, SECRET]);
      for (const host of ['%', '127.0.0.1']) await conn.query(`GRANT ALL PRIVILEGES ON *.* TO ?@? WITH GRANT OPTION`, [USER, host]);
      await conn.end();
    }
    dir = mkdtempSync(join(tmpdir(), 'membermig-secret-'));
    writeFileSync(join(dir, 'legacy-password'), SECRET + '\n');
    const raw = env.raw as { control: { url: string }; source: { url: string } & Record<string, unknown>; servers: Record<string, { primary: string }> };
    const placeholder = 'PLACEHOLDER';
    const sub = (url: string, how: string) => withCredentials(url, placeholder).replace(placeholder, how);
    env.raw = {
      ...env.raw,
      control: { url: sub(raw.control.url, '${MM_TEST_SECRET}') },
      source: { ...raw.source, url: sub(raw.source.url, `\${file:${join(dir, 'legacy-password')}}`) },
      servers: Object.fromEntries(Object.entries(raw.servers).map(([name, s]) => [name, { ...s, primary: sub(s.primary, '${MM_TEST_SECRET}') }])),
    };
    writeRaw(env);
    expect(readFileSync(env.configPath, 'utf8')).not.toContain(SECRET); // the file holds references only
  });
  afterAll(async () => {
    for (const url of new Set(Object.values(env?.urls ?? {}))) {
      const conn = await connectMysql(url);
      for (const host of ['%', '127.0.0.1']) await conn.query('DROP USER IF EXISTS ?@?', [USER, host]).catch(() => {});
      await conn.end();
    }
    await env?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const run = async (name: string, args: string[], expectCode?: number) => {
    const r = await execWithin([...args, '--config', env.configPath, '--log-level', 'debug'], 60_000, childEnv());
    expect(r.hung, `${name} did not end within 60 s: ${r.stderr.slice(-1500)}`).toBe(false);
    runs.push([name, r]);
    if (expectCode !== undefined) expect(r.code, `${name}: ${r.stderr.slice(-1500)}`).toBe(expectCode);
    return r;
  };

  it('init, full, verify, status and gray with the password: it is in no output, log or control-store column', async () => {
    await run('init', ['init', '--json'], 0);
    await run('full', ['full', '--json'], 0);
    await run('verify', ['verify', '--json'], 0);
    await run('status', ['status', '--json'], 0);
    await run('status (human)', ['status'], 0);
    await run('gray set', ['gray', 'set', 'member', '--allow', '42', '--reason', 'secret test', '--force', '--json']);
    await run('gray show', ['gray', 'show', '--json'], 0);
    await run('verify --repair', ['verify', '--repair'], 0);

    // A server that is not there: errors name the URL, whose password must be masked.
    const port = await freePort();
    const down = env.raw as { servers: Record<string, { primary: string }> };
    const goodServers = down.servers;
    env.raw = { ...env.raw, servers: { ...goodServers, 'shard-b': { ...goodServers['shard-b']!, primary: goodServers['shard-b']!.primary.replace(/:\d+\//, `:${port}/`) } } };
    writeRaw(env);
    await run('full against a missing server', ['full', '--restart', '--json']);
    await run('status against a missing server', ['status', '--json']);
    env.raw = { ...env.raw, servers: goodServers };
    writeRaw(env);

    for (const [name, r] of runs) {
      expect(r.stdout, `${name} stdout`).not.toContain(SECRET);
      expect(r.stderr, `${name} stderr`).not.toContain(SECRET);
    }
    // The runs did log (debug) and did print results, so the grep had something to look at.
    expect(runs.every(([, r]) => r.stdout.length + r.stderr.length > 0)).toBe(true);

    const leaks = await controlStoreLeaks(env, SECRET);
    expect(leaks).toEqual([]);
  }, 300_000); // ten child processes; slow when the shared machine is busy

  it('sync, with Kafka Connect asked through a URL whose password comes from ${ENV}: in no output, log or control-store column', async () => {
    const capture = await captureLegacy(env, ['member']);
    const connectUrl = new URL(kafkaServices().connectUrl);
    const withConnect = { ...env.raw };
    // Credentials in the Connect URL travel as basic auth: Connect here has none and ignores them.
    env.raw = {
      ...env.raw,
      cdc: {
        kafka: {
          brokers: kafkaServices().brokers,
          topic: capture.topics.member!,
          group: `${env.prefix}-secrets`,
          replace_null_with_default: false,
          connect: { url: `http://ops:\${MM_TEST_SECRET}@${connectUrl.host}`, connectors: [capture.connector] },
        },
      },
    };
    writeRaw(env);
    const before = runs.length;
    try {
      await run('sync', ['sync', '--until-caught-up', '--json'], 0);
      // A paused connector is a problem sync records in the control store (cdc_connector_outages) and status and gray name.
      await fetch(`${kafkaServices().connectUrl}/connectors/${capture.connector}/pause`, { method: 'PUT' });
      for (const deadline = Date.now() + 30_000; ; ) {
        const res = await fetch(`${kafkaServices().connectUrl}/connectors/${capture.connector}/status`);
        if (((await res.json()) as { connector: { state: string } }).connector.state === 'PAUSED') break;
        if (Date.now() > deadline) throw new Error('connector did not pause');
        await new Promise((r) => setTimeout(r, 200));
      }
      const paused = await run('sync with the connector paused', ['sync', '--until-caught-up', '--json'], 1);
      expect(paused.stdout).toContain(`connector ${capture.connector} is PAUSED`);
      await run('status with the connector paused', ['status', '--json'], 1);
      await run('gray check with the connector paused', ['gray', 'check', 'member', '1', '--json']);
    } finally {
      await capture.stop();
      env.raw = withConnect;
      writeRaw(env);
    }
    for (const [name, r] of runs.slice(before)) {
      expect(r.stdout, `${name} stdout`).not.toContain(SECRET);
      expect(r.stderr, `${name} stderr`).not.toContain(SECRET);
    }
    // The paused connector was recorded, with the Connect URL in its problem: the store had it to hold.
    const control = await connectMysql(env.config.control.url);
    const [outages] = await control.query('SELECT problem FROM cdc_connector_outages WHERE connector = ?', [capture.connector]);
    await control.end();
    expect((outages as { problem: string }[]).length).toBeGreaterThan(0);
    expect(await controlStoreLeaks(env, SECRET)).toEqual([]);
  }, 300_000);
});

/** Every text, JSON and blob column of every control-store table that holds the secret (as `table.column`). */
async function controlStoreLeaks(env: TestEnv, secret: string): Promise<string[]> {
  const conn = await connectMysql(env.config.control.url);
  try {
    const [cols] = await conn.query(
      `SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = DATABASE() AND DATA_TYPE IN ('char','varchar','tinytext','text','mediumtext','longtext','json','binary','varbinary','tinyblob','blob','mediumblob','longblob','enum','set')`,
    );
    const list = cols as { t: string; c: string }[];
    expect(list.length).toBeGreaterThan(10);
    const leaks: string[] = [];
    for (const { t, c } of list) {
      const [rows] = await conn.query(`SELECT COUNT(*) AS n FROM ${quoteId(t)} WHERE LOCATE(?, CAST(${quoteId(c)} AS BINARY)) > 0`, [Buffer.from(secret)]);
      if (Number((rows as { n: number }[])[0]!.n) > 0) leaks.push(`${t}.${c}`);
    }
    return leaks;
  } finally {
    await conn.end();
  }
}
