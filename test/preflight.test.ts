import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { writeFileSync } from 'node:fs';
import { connectMysql } from '../src/mysql/connect.js';
import { runCli } from './support/cli.js';
import { createTestEnv, withDatabase, type TestEnv } from './support/env.js';

/** init with least-privilege accounts: it names what is missing, and works with exactly what it lists. */
describe('init preflight with least-privilege users', () => {
  let env: TestEnv;
  const user = `mm_${randomBytes(3).toString('hex')}`;
  const password = `pw-${randomBytes(6).toString('hex')}`;

  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4 });
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query('CREATE TABLE member (member_id BIGINT PRIMARY KEY, name VARCHAR(50) NULL)');
    await legacy.end();
    for (const url of [env.urls.legacy, env.urls.shardA, env.urls.shardB]) {
      const conn = await connectMysql(url);
      await conn.query(`CREATE USER IF NOT EXISTS '${user}'@'%' IDENTIFIED BY '${password}'`);
      await conn.end();
    }
  });
  afterAll(async () => {
    for (const url of [env.urls.legacy, env.urls.shardA, env.urls.shardB]) {
      const conn = await connectMysql(url);
      await conn.query(`DROP USER IF EXISTS '${user}'@'%'`);
      await conn.end();
    }
    await env?.cleanup();
  });

  function configAs(): string {
    const cred = (url: string, db?: string) => {
      const u = new URL(db ? withDatabase(url, db) : url);
      u.username = user;
      u.password = '${MM_TEST_PW}';
      return decodeURIComponent(u.toString());
    };
    const raw = structuredClone(env.raw) as Record<string, any>;
    raw.control.url = cred(env.urls.legacy, `${env.prefix}_control`);
    raw.source.url = cred(env.urls.legacy, env.legacyDb);
    raw.servers['shard-a'].primary = cred(env.urls.shardA);
    raw.servers['shard-b'].primary = cred(env.urls.shardB);
    const file = env.configPath.replace('.yaml', '-lp.yaml');
    writeFileSync(file, stringify(raw));
    return file;
  }

  it('refuses with the missing privileges named, changes nothing, and never prints the password', async () => {
    process.env.MM_TEST_PW = password;
    const res = await runCli(['init', '--config', configAs()]);
    expect(res.code).toBe(2);
    expect(res.stdout).toMatch(/control .*missing SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX on `mmt_\w+_control`\.\*/);
    // One finding for all of a server's shard databases, naming how many and the first and last.
    expect(res.stdout).toMatch(/server shard-a .*missing .* on \d+ databases \(`mmt_\w+_s000`\.\* … `mmt_\w+_s\d+`\.\*\)/);
    expect(res.stdout).toMatch(/source .*missing BINLOG MONITOR or REPLICATION CLIENT on \*\.\* \(full reads the binary log position sync starts from\)/);
    expect(res.stdout).toContain('Preflight found errors; nothing was changed.');
    expect(res.stdout + res.stderr).not.toContain(password);
  });

  it('succeeds with exactly the privileges it lists', async () => {
    const pattern = `${env.prefix.replace(/_/g, '\\_')}\\_%`;
    const legacy = await connectMysql(env.urls.legacy);
    await legacy.query(`GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX ON \`${env.prefix}_control\`.* TO '${user}'@'%'`);
    await legacy.query(`GRANT SELECT ON \`${env.legacyDb}\`.* TO '${user}'@'%'`);
    await legacy.query(`GRANT BINLOG MONITOR ON *.* TO '${user}'@'%'`);
    await legacy.end();
    for (const url of [env.urls.shardA, env.urls.shardB]) {
      const conn = await connectMysql(url);
      await conn.query(`GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP ON \`${pattern}\`.* TO '${user}'@'%'`);
      await conn.end();
    }
    process.env.MM_TEST_PW = password;
    const res = await runCli(['init', '--config', configAs()]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain('shard databases created');
    expect(res.stdout + res.stderr).not.toContain(password);
  });

  it('full works with exactly these privileges; without BINLOG MONITOR it is refused (exit 2) before any write, the reason named', async () => {
    process.env.MM_TEST_PW = password;
    const legacy = await connectMysql(env.legacyUrl);
    await legacy.query('INSERT INTO member VALUES (1, \'a\'), (2, NULL)');
    await legacy.query(`REVOKE BINLOG MONITOR ON *.* FROM '${user}'@'%'`);
    const config = configAs();
    const refused = await runCli(['full', '--config', config]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('legacy source (source.url): cannot read the binary log position that sync starts from: the account needs BINLOG MONITOR (MariaDB) or REPLICATION CLIENT (MySQL) on *.*');
    const control = await connectMysql(withDatabase(env.urls.legacy, `${env.prefix}_control`));
    const [jobs] = await control.query("SELECT COUNT(*) AS n FROM jobs WHERE kind = 'full'");
    expect(Number((jobs as { n: number }[])[0]!.n)).toBe(0);

    await legacy.query(`GRANT BINLOG MONITOR ON *.* TO '${user}'@'%'`);
    await legacy.end();
    const copied = await runCli(['full', '--config', config, '--json']);
    expect(copied.code, copied.stderr).toBe(0);
    expect(JSON.parse(copied.stdout).result.rowsThisRun).toBe(2);
    const [done] = await control.query("SELECT state FROM jobs WHERE kind = 'full'");
    await control.end();
    expect(done).toEqual([{ state: 'done' }]);
  });
});
