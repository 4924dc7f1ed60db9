import type sql from 'mssql';
import type { Finding } from '../../preflight/check.js';
import { describeMssqlUrl, openMssqlPool, type MssqlConnectOptions } from './connect.js';
import { CAPTURE_INSTANCES_SQL, type CaptureInstanceRow } from './tsql.js';

/**
 * Preflight for the SQL Server side: version, rights, CDC and SQL Server Agent. The T-SQL and the
 * reading of its result rows are pure (tested exactly); only checkMssqlSource talks to a server.
 */

/** One row: version, database, CDC and isolation settings, and the caller's rights. */
export const SERVER_FACTS_SQL = `SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS product_version,
  CAST(SERVERPROPERTY('Edition') AS nvarchar(128)) AS edition,
  CAST(SERVERPROPERTY('EngineEdition') AS int) AS engine_edition,
  DB_NAME() AS database_name,
  d.is_cdc_enabled,
  d.snapshot_isolation_state,
  d.is_read_committed_snapshot_on,
  d.recovery_model_desc,
  HAS_PERMS_BY_NAME(NULL, NULL, 'VIEW SERVER STATE') AS has_view_server_state,
  IS_SRVROLEMEMBER('sysadmin') AS is_sysadmin,
  IS_ROLEMEMBER('db_owner') AS is_db_owner
FROM sys.databases AS d
WHERE d.database_id = DB_ID()`;

/** Needs VIEW SERVER STATE; Debezium checks the Agent the same way (status 4 = running). */
export const AGENT_STATUS_SQL = `SELECT servicename, status, status_desc
FROM sys.dm_server_services
WHERE servicename LIKE N'SQL Server Agent%'`;


/** Cleanup retention in minutes; needs read access to msdb (db_owner of the database is not enough everywhere). */
export const CLEANUP_RETENTION_SQL = `SELECT retention FROM msdb.dbo.cdc_jobs WHERE database_id = DB_ID() AND job_type = N'cleanup'`;

export interface ServerFacts {
  product_version: string;
  edition: string;
  engine_edition: number;
  database_name: string;
  is_cdc_enabled: boolean;
  snapshot_isolation_state: number;
  is_read_committed_snapshot_on: boolean;
  recovery_model_desc: string;
  has_view_server_state: number | null;
  is_sysadmin: number | null;
  is_db_owner: number | null;
}

export interface AgentRow {
  servicename: string;
  status: number;
  status_desc: string;
}

/** SQL Server 2016 (13.x) or later: DATEDIFF_BIG and OFFSET/FETCH are used. */
export const MIN_MAJOR_VERSION = 13;

/**
 * Azure SQL Database (EngineEdition 5) and Managed Instance (8) report version 12.x although they
 * are newer than every boxed release (SERVERPROPERTY docs): no version gate applies to them.
 */
export function isAzureSql(engineEdition: number): boolean {
  return engineEdition === 5 || engineEdition === 8;
}

export function interpretServerFacts(f: ServerFacts, needCdc: boolean): Finding[] {
  const findings: Finding[] = [];
  const major = Number(/^(\d+)\./.exec(f.product_version)?.[1]);
  if (isAzureSql(Number(f.engine_edition))) {
    // Current by definition (see isAzureSql).
  } else if (!Number.isFinite(major)) findings.push({ severity: 'warning', message: `unrecognised SQL Server version "${f.product_version}"` });
  else if (major < MIN_MAJOR_VERSION) {
    findings.push({ severity: 'error', message: `SQL Server ${f.product_version} is too old: membermig needs SQL Server 2016 (13.0) or later` });
  }
  if (needCdc && !f.is_cdc_enabled) {
    findings.push({ severity: 'error', message: `CDC is not enabled on database ${f.database_name}: run sys.sp_cdc_enable_db (sysadmin), then sys.sp_cdc_enable_table per table` });
  }
  if (!f.is_read_committed_snapshot_on && f.snapshot_isolation_state !== 1) {
    findings.push({
      severity: 'warning',
      message: `database ${f.database_name} has neither READ_COMMITTED_SNAPSHOT nor ALLOW_SNAPSHOT_ISOLATION: keyset pages take shared locks while they read`,
    });
  }
  if (needCdc && f.has_view_server_state !== 1 && f.is_sysadmin !== 1) {
    findings.push({ severity: 'warning', message: 'no VIEW SERVER STATE permission: cannot check that SQL Server Agent runs (CDC harvests nothing without it)' });
  }
  return findings;
}

/** Agent rows → findings. No row (Azure SQL, or no rights) means we cannot tell. */
export function interpretAgentStatus(rows: AgentRow[] | null): Finding[] {
  if (rows === null || rows.length === 0) {
    return [{ severity: 'warning', message: 'cannot tell whether SQL Server Agent runs (sys.dm_server_services shows no Agent): CDC capture and cleanup are Agent jobs' }];
  }
  const running = rows.some((r) => r.status === 4);
  if (running) return [];
  const states = rows.map((r) => `${r.servicename}: ${r.status_desc}`).join(', ');
  return [{ severity: 'error', message: `SQL Server Agent is not running (${states}): CDC harvests nothing and the log cannot truncate` }];
}

/** Every configured capture instance must exist, for the configured table. */
export function interpretCaptureInstances(rows: Pick<CaptureInstanceRow, 'capture_instance' | 'source_schema' | 'source_table'>[], wanted: Record<string, { instance: string; source: string }>): Finding[] {
  const findings: Finding[] = [];
  const byInstance = new Map(rows.map((r) => [r.capture_instance.toLowerCase(), r]));
  for (const [table, { instance, source }] of Object.entries(wanted)) {
    const row = byInstance.get(instance.toLowerCase());
    if (!row) {
      findings.push({ severity: 'error', message: `cdc.mssql.capture_instances.${table}: capture instance ${instance} does not exist (sys.sp_cdc_enable_table), or this login may not read it (SELECT on every column it captures, and its gating role)` });
      continue;
    }
    const actual = `${row.source_schema}.${row.source_table}`;
    if (actual.toLowerCase() !== source.toLowerCase()) {
      findings.push({ severity: 'error', message: `cdc.mssql.capture_instances.${table}: capture instance ${instance} captures ${actual}, not ${source}` });
    }
    const others = rows.filter((r) => r !== row && `${r.source_schema}.${r.source_table}`.toLowerCase() === actual.toLowerCase());
    for (const o of others) {
      findings.push({ severity: 'warning', message: `table ${actual} has a second capture instance ${o.capture_instance}: switch to it once it covers your position` });
    }
  }
  return findings;
}

/** Less than a day of retention leaves little room to restart a stopped sync before changes are cleaned up. */
export function interpretRetention(rows: { retention: number }[] | null): Finding[] {
  const minutes = rows?.[0]?.retention;
  if (minutes === undefined) return [{ severity: 'warning', message: 'cannot read the CDC cleanup retention (msdb.dbo.cdc_jobs)' }];
  if (minutes < 24 * 60) {
    return [{ severity: 'warning', message: `CDC cleanup retention is ${minutes} minutes: a sync stopped longer than that must re-copy the table` }];
  }
  return [];
}

export interface MssqlPreflightReport {
  label: string;
  version?: string;
  findings: Finding[];
}

export interface MssqlPreflightInput {
  url: string;
  connect?: MssqlConnectOptions;
  /** Config tables that CDC must cover: logical name → capture instance and schema.table. */
  captureInstances?: Record<string, { instance: string; source: string }>;
  needCdc: boolean;
}

/** Runs every check; a failed connection or a query without rights is itself a finding. */
export async function checkMssqlSource(input: MssqlPreflightInput): Promise<MssqlPreflightReport> {
  const label = `source ${describeMssqlUrl(input.url)}`;
  let pool: sql.ConnectionPool;
  try {
    pool = await openMssqlPool(input.url, { ...input.connect, poolMax: 1, requestTimeoutMs: 30_000 });
  } catch (e) {
    return { label, findings: [{ severity: 'error', message: (e as Error).message }] };
  }
  try {
    const facts = (await pool.request().query<ServerFacts>(SERVER_FACTS_SQL)).recordset[0]!;
    const findings = interpretServerFacts(facts, input.needCdc);
    if (input.needCdc) {
      findings.push(...interpretAgentStatus(await optional(pool, AGENT_STATUS_SQL)));
      if (facts.is_cdc_enabled) {
        findings.push(...interpretCaptureInstances((await pool.request().query<CaptureInstanceRow>(CAPTURE_INSTANCES_SQL)).recordset, input.captureInstances ?? {}));
        findings.push(...interpretRetention(await optional(pool, CLEANUP_RETENTION_SQL)));
      }
    }
    return { label, version: `${facts.product_version} ${facts.edition}`, findings };
  } finally {
    await pool.close();
  }
}

/** A query that needs rights the account may lack: null instead of an error. */
async function optional<T>(pool: sql.ConnectionPool, text: string): Promise<T[] | null> {
  try {
    return (await pool.request().query<T>(text)).recordset;
  } catch {
    return null;
  }
}
