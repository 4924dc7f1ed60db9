import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Connection } from 'mysql2/promise';
import { connectMysql } from '../src/mysql/connect.js';
import { runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { createMemberTable } from './support/nasty.js';

/**
 * `status` is what a runbook step or a CI gate runs to ask "is everything clean?": the contract's
 * exit 1 ("found or left problems") must come with each problem status shows, not only with an
 * unreachable control store. The control store's rows are written here as the commands write them.
 */
describe('membermig status exit code', () => {
  let env: TestEnv;
  let control: Connection;
  beforeAll(async () => {
    env = await createTestEnv({ shardCount: 4 });
    await createMemberTable(env.legacyUrl, 3);
    const init = await runCli(['init', '--config', env.configPath]);
    expect(init.code, init.stderr).toBe(0);
    control = await connectMysql(env.config.control.url);
  });
  afterAll(async () => {
    await control?.end();
    await env?.cleanup();
  });
  beforeEach(async () => {
    for (const t of ['cdc_connector_outages', 'dead_letters', 'verify_runs', 'chunks', 'jobs']) await control.query(`DELETE FROM ${t}`);
  });

  /** Runs status both ways; returns the exit code and result.problems (the same code both ways). */
  async function status(config = env.configPath): Promise<{ code: number; problems: string[]; text: string }> {
    const human = await runCli(['status', '--config', config]);
    const json = await runCli(['status', '--config', config, '--json']);
    expect(json.code).toBe(human.code);
    const doc = JSON.parse(json.stdout);
    expect(doc.exitCode).toBe(json.code);
    expect(doc.ok).toBe(json.code === 0);
    return { code: human.code, problems: doc.result.problems, text: human.stdout };
  }

  function configWith(extra: Record<string, unknown>, name: string): string {
    const file = join(dirname(env.configPath), name);
    writeFileSync(file, stringify({ ...env.raw, ...extra }));
    return file;
  }

  it('exits 0 on a migrated store with nothing wrong', async () => {
    const s = await status();
    expect(s).toMatchObject({ code: 0, problems: [] });
  });

  it('exits 1 while the Debezium connector is not running (Kafka Connect down), and names it', async () => {
    // Connect's URL carries a password (basic auth): it is shown nowhere.
    const file = configWith(
      { cdc: { kafka: { brokers: ['127.0.0.1:9'], topic: `${env.prefix}.member`, group: `${env.prefix}-g`, connect: { url: 'http://admin:s3cr3t-connect@127.0.0.1:9', connectors: ['legacy-cdc'] } } } },
      'connect-down.yaml',
    );
    const s = await status(file);
    expect(s.code).toBe(1);
    expect(s.problems.join('\n')).toContain('the state of connector legacy-cdc is unknown');
    expect(s.text).toMatch(/^problems \(exit 1\):$/m);
    expect(s.text).not.toContain('s3cr3t-connect');
  });

  it('exits 1 when the last thing recorded of a connector is that it was not running (no cdc.kafka.connect to ask now)', async () => {
    await control.query("INSERT INTO cdc_connector_outages (connector, problem) VALUES ('legacy-cdc', 'connector legacy-cdc is PAUSED')");
    const s = await status();
    expect(s.code).toBe(1);
    expect(s.problems.join('\n')).toContain('connector legacy-cdc was seen not running');
  });

  it('exits 1 with open dead letters', async () => {
    await control.query("INSERT INTO dead_letters (source, partition_no, offset_no, table_name, reason) VALUES ('t', 0, '5', 'member', 'bad event')");
    const s = await status();
    expect(s.code).toBe(1);
    expect(s.problems).toContain('1 open dead letters');
  });

  it('exits 1 when the last verify found differences, 0 once a later one is clean', async () => {
    await control.query("INSERT INTO verify_runs (table_name, scope, state, differences, finished_at) VALUES ('member', NULL, 'differences', 3, NOW(6))");
    const s = await status();
    expect(s.code).toBe(1);
    expect(s.problems).toContain('member: last verify (run ' + (await lastRunId()) + ') found 3 differences not repaired');
    await control.query("INSERT INTO verify_runs (table_name, scope, state, finished_at) VALUES ('member', NULL, 'clean', NOW(6))");
    expect((await status()).code).toBe(0);
  });

  it('exits 1 for a full copy with a failed chunk, or stopped with chunks left; 0 while one is done', async () => {
    const [job] = (await control.query("INSERT INTO jobs (kind, name, state, options) VALUES ('full', 'member', 'running', '{\"tables\":[\"member\"]}')")) as unknown as [{ insertId: number }];
    await control.query("INSERT INTO chunks (job_id, table_name, chunk_no, state, rows_done) VALUES (?, 'member', 0, 'done', 10), (?, 'member', 1, 'pending', NULL)", [job.insertId, job.insertId]);
    // No process works on it: stopped, one chunk not done.
    const stopped = await status();
    expect(stopped.code).toBe(1);
    expect(stopped.problems.join('\n')).toContain(`full copy job ${job.insertId} is stopped with 1 chunks not done`);
    await control.query("UPDATE chunks SET state = 'failed' WHERE chunk_no = 1");
    await control.query("UPDATE jobs SET state = 'failed', finished_at = NOW(6)");
    const failed = await status();
    expect(failed.code).toBe(1);
    expect(failed.problems.join('\n')).toContain(`full copy job ${job.insertId} has 1 failed chunks`);
    await control.query("UPDATE chunks SET state = 'done', rows_done = 5 WHERE chunk_no = 1");
    await control.query("UPDATE jobs SET state = 'done'");
    expect((await status()).code).toBe(0);
  });

  it('exits 1 when members are on MySQL and a gate that let them go there fails', async () => {
    const set = await runCli(['gray', 'set', 'member', '--read', '5%', '--reason', 'test', '--force', '--config', env.configPath]);
    expect(set.code, set.stderr).toBe(0);
    try {
      const s = await status();
      expect(s.code).toBe(1);
      expect(s.problems.join('\n')).toContain('member: members are on MySQL but gate verify fails: no finished full verify of table member');
    } finally {
      expect((await runCli(['gray', 'rollback', 'member', '--to', '0', '--reason', 'test', '--config', env.configPath])).code).toBe(0);
    }
    expect((await status()).code).toBe(0);
  });

  async function lastRunId(): Promise<number> {
    const [rows] = (await control.query('SELECT MAX(id) AS id FROM verify_runs')) as unknown as [{ id: number }[]];
    return Number(rows[0]!.id);
  }
});
