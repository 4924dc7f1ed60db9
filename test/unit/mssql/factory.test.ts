import { describe, expect, it } from 'vitest';
import { openMssqlCdcSource } from '../../../src/cdc/mssql/index.js';
import { runSync } from '../../../src/cdc/sync.js';
import { parseConfig } from '../../../src/config/index.js';
import { RefusedError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { createMssqlReader } from '../../../src/source/mssql/index.js';

const yaml = (extra = '') => `
control: { url: "mysql://root@127.0.0.1:1/membermig_control" }
source: { kind: mssql, url: "mssql://membermig:Sup3rSecretPw@127.0.0.1:1/MemberDB", trust_server_certificate: true }
servers: { a: { primary: "mysql://root@127.0.0.1:1" } }
shards: { count: 4, function: mod, database: "member_{shard}", placement: [{ shards: "0-3", server: a }] }
tables: { member: { source: dbo.Member, target: member, shard_key: member_id } }
${extra}`;

describe('createMssqlReader / openMssqlCdcSource from a config', () => {
  it('builds a reader without connecting, and closes cleanly', async () => {
    const reader = createMssqlReader(parseConfig(yaml(), 'membermig.yaml'), silentLogger);
    expect(reader.kind).toBe('mssql');
    await reader.close();
  });

  it('a server that refuses the connection is named without the password', async () => {
    const reader = createMssqlReader(parseConfig(yaml(), 'membermig.yaml'), silentLogger);
    const config = parseConfig(yaml(), 'membermig.yaml');
    const error = await reader.describeTable('member', config.tables.member!).then(
      () => null,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/^cannot connect to SQL Server at 127\.0\.0\.1:1\/MemberDB: /);
    expect(error?.message).not.toContain('Sup3rSecretPw');
    await reader.close();
  });

  it('refuses direct CDC without cdc.mssql.capture_instances', async () => {
    const control = {} as never; // never reached: the refusal comes first
    await expect(openMssqlCdcSource(parseConfig(yaml(), 'membermig.yaml'), { apply: async () => {}, logger: silentLogger, control, specs: new Map() })).rejects.toThrow(RefusedError);
    await expect(
      openMssqlCdcSource(parseConfig(yaml('cdc: { mssql: { capture_instances: {} } }'), 'membermig.yaml'), { apply: async () => {}, logger: silentLogger, control, specs: new Map() }),
    ).rejects.toThrow(/cdc\.mssql\.capture_instances names no table/);
  });

  it('sync with cdc.mssql reads SQL Server directly: an unreachable server is named, without the password', async () => {
    const config = parseConfig(yaml('cdc: { mssql: { capture_instances: { member: dbo_Member } } }'), 'membermig.yaml');
    const error = await runSync(config).then(
      () => null,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/^cannot connect to SQL Server at 127\.0\.0\.1:1\/MemberDB: /);
    expect(error?.message).not.toContain('Sup3rSecretPw');
  });

  it('sync refuses a config with both change sources, and one with none', async () => {
    const both = parseConfig(yaml('cdc: { kafka: { brokers: ["127.0.0.1:1"], topic: t, group: g }, mssql: { capture_instances: { member: dbo_Member } } }'), 'membermig.yaml');
    await expect(runSync(both)).rejects.toThrow(/cdc\.kafka and cdc\.mssql are both set/);
    await expect(runSync(parseConfig(yaml(), 'membermig.yaml'))).rejects.toThrow(/sync needs a change source in the config: cdc\.kafka .* or cdc\.mssql/);
  });
});
