import type { Connection, Pool } from 'mysql2/promise';
import { writeFileSync } from 'node:fs';
import pino from 'pino';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJson, readSettings, type SettingsSnapshot } from '../src/gray/settings.js';
import { connectMysql, quoteId } from '../src/mysql/connect.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { createShim, PrimaryWriteError, RepairQueueError, type MysqlTarget, type Shim } from '../src/shim/index.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { startFreezingProxy } from './support/freezing-proxy.js';

/** The shim library against a real control store and real shard servers. */
describe('membermig/shim', () => {
  let env: TestEnv;
  let db: Connection;
  const shims: Shim[] = [];
  const cli = async (...args: string[]) => {
    const r = await runCli([...args, '--config', env.configPath, '--force', '--reason', 'shim test']);
    expect(r.code, r.stderr).toBe(0);
  };
  const start = async () => {
    const s = await createShim({ config: env.configPath });
    shims.push(s);
    return s;
  };

  beforeAll(async () => {
    env = await createTestEnv({
      shardCount: 8,
      tables: {
        member: { source: 'legacy.member', target: 'member_t', shard_key: 'member_id' },
        item: { source: 'legacy.item', target: 'item', shard_key: 'member_id' },
      },
      legacySql: ['CREATE TABLE member (member_id BIGINT UNSIGNED PRIMARY KEY)', 'CREATE TABLE item (member_id BIGINT UNSIGNED NOT NULL, seq INT NOT NULL, PRIMARY KEY (member_id, seq))'],
    });
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    db = await connectMysql(env.config.control.url);
  });
  afterAll(async () => {
    await Promise.all(shims.map((s) => s.close()));
    await db?.end();
    await env?.cleanup();
  });

  it('two running shims act on a rollback within 2 seconds, without a restart', async () => {
    const [a, b] = [await start(), await start()];
    expect(a.route('member', 12345)).toEqual({ read: 'legacy', write: 'legacy' });
    await cli('gray', 'set', 'member', '--read', '100%');
    await waitFor(() => a.route('member', 12345).read === 'mysql' && b.route('member', '12345').read === 'mysql', 2000);

    const t0 = Date.now();
    const r = await runCli(['gray', 'rollback', 'member', '--to', '0', '--config', env.configPath]);
    expect(r.code, r.stderr).toBe(0);
    await waitFor(() => a.route('member', 12345).read === 'legacy' && b.route('member', 12345).read === 'legacy', 2000);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(a.version).toBe(b.version);
  });

  it('a poll stuck on a half-open connection is given up and the shim reconnects: a rollback is still acted on', async () => {
    const url = new URL(env.config.control.url);
    const proxy = await startFreezingProxy(Number(url.port));
    try {
      const viaProxy = Object.assign(new URL(url.toString()), { port: String(proxy.port) }).toString();
      const shim = await createShim({ config: { ...env.config, control: { ...env.config.control, url: viaProxy } } });
      shims.push(shim);
      await cli('gray', 'set', 'member', '--read', '100%');
      await waitFor(() => shim.route('member', 91).read === 'mysql', 3000);
      // The host freezes: the poll connection's bytes stop, and nothing closes it.
      proxy.freeze();
      const back = await runCli(['gray', 'rollback', 'member', '--to', '0', '--config', env.configPath]);
      expect(back.code, back.stderr).toBe(0);
      await waitFor(() => shim.route('member', 91).read === 'legacy', 8000);
    } finally {
      await proxy.close();
    }
  });

  it('a refresh that read older settings never replaces newer ones (overlapping refreshes)', async () => {
    const shim = await start();
    const older = await readSettings(db as unknown as Pool);
    await cli('gray', 'set', 'member', '--read', '100%');
    await shim.refresh();
    const newer = shim.version;
    expect(newer).toBeGreaterThan(older.version);
    expect(shim.route('member', 77).read).toBe('mysql');
    // The slower of two refreshes finishes last, with what it read before the change.
    (shim as unknown as { install(s: SettingsSnapshot): void }).install(older);
    expect(shim.version).toBe(newer);
    expect(shim.route('member', 77).read).toBe('mysql');
    expect((await runCli(['gray', 'rollback', 'member', '--to', '0', '--config', env.configPath])).code).toBe(0);
  });

  it('keeps acting on the last settings while the control store cannot be read, then catches up', async () => {
    const shim = await start();
    await cli('gray', 'set', 'member', '--read', '100%');
    await waitFor(() => shim.route('member', 31).read === 'mysql', 2000);
    await db.query('RENAME TABLE settings_version TO settings_version_away');
    try {
      await new Promise((r) => setTimeout(r, 1200));
      expect(shim.route('member', 31).read).toBe('mysql');
    } finally {
      await db.query('RENAME TABLE settings_version_away TO settings_version');
    }
    const back = await runCli(['gray', 'rollback', 'member', '--to', '0', '--config', env.configPath]);
    expect(back.code, back.stderr).toBe(0);
    await waitFor(() => shim.route('member', 31).read === 'legacy', 2000);
    await expect(createShim({ config: { ...env.config, control: { url: 'mysql://root@127.0.0.1:1/nowhere' } } })).rejects.toThrow();
  });

  it('dual write: primary first, a failed second write is queued for repair and the request succeeds', async () => {
    const shim = await start();
    await cli('shim', 'set', 'member', 'dual_legacy_primary');
    await cli('gray', 'set', 'member', '--write', '100%');
    await waitFor(() => shim.route('member', 777).write === 'legacy_then_mysql', 2000);

    const calls: string[] = [];
    const outcome = await shim.write('member', 777, {
      legacy: async () => calls.push('legacy'),
      mysql: async () => {
        calls.push('mysql');
        throw new Error('shard-b is down');
      },
    });
    expect(calls).toEqual(['legacy', 'mysql']);
    expect(outcome).toMatchObject({ plan: 'legacy_then_mysql', written: ['legacy'], queuedForRepair: true });

    await shim.write('member', '888', { legacy: async () => undefined, mysql: async () => Promise.reject(new Error('timeout')) }, { pk: { member_id: '888', seq: '2' } });
    const [rows] = await db.query('SELECT table_name, pk, reason, origin, behind, resolved_at FROM repair_queue ORDER BY id');
    const queued = (rows as { table_name: string; pk: unknown; reason: string; origin: string; resolved_at: null }[]).map((r) => ({ ...r, pk: parseJson(r.pk) }));
    expect(queued).toHaveLength(2);
    expect(queued[0]).toMatchObject({ table_name: 'member', pk: { member_id: '777' }, origin: 'shim', behind: 'mysql', resolved_at: null });
    expect(queued[0]!.reason).toContain('mysql write failed after the legacy (primary) write succeeded [legacy_then_mysql]: shard-b is down');
    expect(queued[1]!.pk).toEqual({ member_id: '888', seq: '2' });

    // A failed primary fails the request, writes nothing else and queues nothing.
    let secondCalled = false;
    await expect(
      shim.write('member', 999, { legacy: async () => Promise.reject(new Error('legacy down')), mysql: async () => (secondCalled = true) }),
    ).rejects.toBeInstanceOf(PrimaryWriteError);
    expect(secondCalled).toBe(false);
    const [count] = await db.query('SELECT COUNT(*) AS n FROM repair_queue');
    expect(Number((count as { n: number }[])[0]!.n)).toBe(2);

    // Only when the key cannot be queued either does the request fail: the change is never dropped silently.
    await db.query('RENAME TABLE repair_queue TO repair_queue_away');
    try {
      await expect(shim.write('member', 1001, { legacy: async () => undefined, mysql: async () => Promise.reject(new Error('down')) })).rejects.toBeInstanceOf(RepairQueueError);
    } finally {
      await db.query('RENAME TABLE repair_queue_away TO repair_queue');
    }
  });

  it("a second write's error quoting the shard URL the shim gave (its password from ${ENV}) is stored and logged without the password", async () => {
    const secret = 'shim-url-secret-7f3a91';
    process.env.MM_SHIM_TEST_SECRET = secret;
    const url = new URL(env.urls.shardA);
    const raw = { ...env.raw, servers: { ...(env.raw.servers as object), 'shard-a': { primary: `mysql://root:\${MM_SHIM_TEST_SECRET}@${url.host}/`, dc: 'dc1' } } };
    const configPath = env.configPath.replace(/\.yaml$/, '-secret.yaml');
    writeFileSync(configPath, stringify(raw));
    const logged: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logged.push(line) });
    // Root has no password here: the shim cannot read shard-a's keys at start (it says so) and goes on.
    const shim = await createShim({ config: configPath, logger });
    shims.push(shim);
    await cli('shim', 'set', 'member', 'dual_legacy_primary');
    await cli('gray', 'set', 'member', '--write', '100%');
    await waitFor(() => shim.route('member', 4321).write === 'legacy_then_mysql', 2000);
    const id = [...Array(200).keys()].find((n) => shim.mysqlTarget('member', n).server.name === 'shard-a')!;
    const outcome = await shim.write('member', id, {
      legacy: async () => undefined,
      mysql: async (target) => Promise.reject(new Error(`connect to ${target.server.primary} failed`)),
    });
    expect(outcome.queuedForRepair).toBe(true);
    expect(outcome.secondError!.message).toContain(secret); // the application's own error, handed back as it was
    const [rows] = await db.query("SELECT reason FROM repair_queue WHERE JSON_EXTRACT(pk, '$.member_id') = ?", [String(id)]);
    const reason = (rows as { reason: string }[])[0]!.reason;
    expect(reason).toContain('mysql write failed after the legacy (primary) write succeeded');
    expect(reason).not.toContain(secret);
    expect(logged.join('')).toContain('second write failed; key queued for repair');
    expect(logged.join('')).not.toContain(secret);
  });

  it('the MySQL side gets the shard map location and a real write lands in that shard', async () => {
    const shim = await start();
    await cli('gray', 'set', 'member', '--write', '100%');
    await cli('shim', 'set', 'member', 'dual_mysql_primary');
    await cli('gray', 'set', 'member', '--write', '100%');
    await waitFor(() => shim.route('member', 4242).write === 'mysql_then_legacy', 2000);

    const map = shardMapFromConfig(env.config);
    const order: string[] = [];
    for (const id of [4242, 4243, 4244, '9007199254740993']) {
      let seen: MysqlTarget | undefined;
      await shim.write('member', id, {
        legacy: async () => order.push(`legacy ${id}`),
        mysql: async (target) => {
          order.push(`mysql ${id}`);
          seen = target;
          const conn = await connectMysql(target.server.primary);
          try {
            await conn.query(`CREATE TABLE IF NOT EXISTS ${quoteId(target.database)}.${quoteId(target.table)} (member_id BIGINT UNSIGNED PRIMARY KEY)`);
            await conn.query(`INSERT INTO ${quoteId(target.database)}.${quoteId(target.table)} VALUES (?)`, [String(id)]);
          } finally {
            await conn.end();
          }
        },
      });
      expect(seen).toEqual({ ...map.locate(id), table: 'member_t' });
      const conn = await connectMysql(map.locate(id).server.primary);
      const [rows] = await conn.query(`SELECT member_id FROM ${quoteId(map.locate(id).database)}.member_t WHERE member_id = ?`, [String(id)]);
      await conn.end();
      expect(rows).toEqual([{ member_id: String(id) }]);
    }
    expect(order.slice(0, 2)).toEqual(['mysql 4242', 'legacy 4242']);

    // MySQL is primary: a failed legacy write is queued with legacy as the side behind (verify holds it).
    const failed = await shim.write('member', 4245, { mysql: async () => undefined, legacy: async () => Promise.reject(new Error('legacy timeout')) });
    expect(failed).toMatchObject({ plan: 'mysql_then_legacy', written: ['mysql'], queuedForRepair: true });
    const [queued] = await db.query("SELECT behind, reason FROM repair_queue WHERE JSON_EXTRACT(pk, '$.member_id') = '4245'");
    expect(queued).toEqual([{ behind: 'legacy', reason: expect.stringContaining('shim: legacy write failed after the mysql (primary) write succeeded') }]);

    // Reads follow the route: MySQL once the member writes MySQL only.
    await cli('shim', 'set', 'member', 'mysql_only');
    await cli('gray', 'set', 'member', '--write', '100%');
    await waitFor(() => shim.route('member', 4242).write === 'mysql', 2000);
    const read = await shim.read('member', 4242, { legacy: async () => 'legacy', mysql: async (t) => `mysql ${t.database}` });
    expect(read).toBe(`mysql ${map.locate(4242).database}`);
    expect(() => shim.route('nosuch', 1)).toThrow('unknown table "nosuch"');
  });

  it('write() refuses, before any write, a pk that could not be repaired: missing on a composite key, or lacking a key column', async () => {
    const shim = await start();
    let writes = 0;
    const callbacks = { legacy: async () => void writes++, mysql: async () => void writes++ };
    await expect(shim.write('item', 5, callbacks)).rejects.toThrow('membermig shim: table item has primary key (member_id, seq): pass options.pk with every key column');
    await expect(shim.write('item', 5, callbacks, { pk: { member_id: '5' } })).rejects.toThrow('options.pk for table item lacks key column seq');
    expect(writes).toBe(0);
    expect((await shim.write('item', 5, callbacks, { pk: { member_id: '5', seq: '1' } })).written.length).toBeGreaterThan(0);
    // A table keyed by its shard key alone may leave pk out.
    expect((await shim.write('member', 5, callbacks)).written.length).toBeGreaterThan(0);
  });
});

async function waitFor(condition: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
