import { describe, expect, it } from 'vitest';
import {
  AGENT_STATUS_SQL,
  CLEANUP_RETENTION_SQL,
  interpretAgentStatus,
  interpretCaptureInstances,
  interpretRetention,
  interpretServerFacts,
  SERVER_FACTS_SQL,
  type ServerFacts,
} from '../../../src/source/mssql/preflight.js';

const facts: ServerFacts = {
  product_version: '16.0.4135.4',
  edition: 'Developer Edition (64-bit)',
  engine_edition: 3,
  database_name: 'MemberDB',
  is_cdc_enabled: true,
  snapshot_isolation_state: 1,
  is_read_committed_snapshot_on: true,
  recovery_model_desc: 'FULL',
  has_view_server_state: 1,
  is_sysadmin: 0,
  is_db_owner: 1,
};

describe('mssql preflight', () => {
  it('asks the server for version, CDC, isolation and rights in one statement', () => {
    expect(SERVER_FACTS_SQL).toContain("SERVERPROPERTY('ProductVersion')");
    expect(SERVER_FACTS_SQL).toContain('d.is_cdc_enabled');
    expect(SERVER_FACTS_SQL).toContain("HAS_PERMS_BY_NAME(NULL, NULL, 'VIEW SERVER STATE') AS has_view_server_state");
    expect(SERVER_FACTS_SQL).toContain('WHERE d.database_id = DB_ID()');
    expect(AGENT_STATUS_SQL).toBe("SELECT servicename, status, status_desc\nFROM sys.dm_server_services\nWHERE servicename LIKE N'SQL Server Agent%'");
    expect(CLEANUP_RETENTION_SQL).toContain("job_type = N'cleanup'");
  });

  it('a healthy server has no findings', () => {
    expect(interpretServerFacts(facts, true)).toEqual([]);
    expect(interpretAgentStatus([{ servicename: 'SQL Server Agent (MSSQLSERVER)', status: 4, status_desc: 'Running' }])).toEqual([]);
    expect(interpretRetention([{ retention: 4320 }])).toEqual([]);
  });

  it('too old a version, CDC off, no snapshot isolation, no VIEW SERVER STATE', () => {
    const f = interpretServerFacts(
      { ...facts, product_version: '12.0.6024.0', is_cdc_enabled: false, snapshot_isolation_state: 0, is_read_committed_snapshot_on: false, has_view_server_state: 0 },
      true,
    );
    expect(f.map((x) => x.severity)).toEqual(['error', 'error', 'warning', 'warning']);
    expect(f[0]!.message).toMatch(/12\.0\.6024\.0 is too old: membermig needs SQL Server 2016/);
    expect(f[1]!.message).toMatch(/CDC is not enabled on database MemberDB: run sys\.sp_cdc_enable_db/);
    expect(f[2]!.message).toMatch(/neither READ_COMMITTED_SNAPSHOT nor ALLOW_SNAPSHOT_ISOLATION/);
    expect(f[3]!.message).toMatch(/no VIEW SERVER STATE/);
    // copy only (no CDC wanted): CDC and Agent findings do not apply
    expect(interpretServerFacts({ ...facts, is_cdc_enabled: false, has_view_server_state: 0 }, false)).toEqual([]);
    expect(interpretServerFacts({ ...facts, product_version: 'vNext' }, true)[0]!.severity).toBe('warning');
  });

  it('Azure SQL Database and Managed Instance report 12.x but are current: no version finding', () => {
    for (const engine_edition of [5, 8]) expect(interpretServerFacts({ ...facts, product_version: '12.0.2000.8', engine_edition }, true)).toEqual([]);
    expect(interpretServerFacts({ ...facts, product_version: '12.0.2000.8', engine_edition: 3 }, true)[0]!.message).toMatch(/is too old/);
  });

  it('SQL Server Agent stopped is an error; no row is a warning (cannot tell)', () => {
    const stopped = interpretAgentStatus([{ servicename: 'SQL Server Agent (MSSQLSERVER)', status: 1, status_desc: 'Stopped' }]);
    expect(stopped).toEqual([{ severity: 'error', message: expect.stringMatching(/SQL Server Agent is not running \(SQL Server Agent \(MSSQLSERVER\): Stopped\)/) }]);
    expect(interpretAgentStatus([])[0]!.severity).toBe('warning');
    expect(interpretAgentStatus(null)[0]!.message).toMatch(/cannot tell whether SQL Server Agent runs/);
  });

  it('checks each configured capture instance exists for its table, and notices a second one', () => {
    const rows = [
      { capture_instance: 'dbo_Member', source_schema: 'dbo', source_table: 'Member' },
      { capture_instance: 'dbo_Member_v2', source_schema: 'dbo', source_table: 'Member' },
      { capture_instance: 'dbo_Order', source_schema: 'dbo', source_table: 'Order' },
    ];
    const f = interpretCaptureInstances(rows, {
      member: { instance: 'dbo_Member', source: 'dbo.Member' },
      orders: { instance: 'dbo_Order', source: 'dbo.Orders' },
      points: { instance: 'dbo_Points', source: 'dbo.Points' },
    });
    expect(f).toEqual([
      { severity: 'warning', message: 'table dbo.Member has a second capture instance dbo_Member_v2: switch to it once it covers your position' },
      { severity: 'error', message: 'cdc.mssql.capture_instances.orders: capture instance dbo_Order captures dbo.Order, not dbo.Orders' },
      { severity: 'error', message: 'cdc.mssql.capture_instances.points: capture instance dbo_Points does not exist (sys.sp_cdc_enable_table), or this login may not read it (SELECT on every column it captures, and its gating role)' },
    ]);
  });

  it('warns about short cleanup retention or when it cannot be read', () => {
    expect(interpretRetention([{ retention: 60 }])[0]!.message).toMatch(/retention is 60 minutes/);
    expect(interpretRetention(null)[0]!.message).toMatch(/cannot read the CDC cleanup retention/);
  });
});
