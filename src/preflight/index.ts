import { connectMysql } from '../mysql/connect.js';
import type { TlsConfig } from '../config/schema.js';
import { binlogCheck } from './binlog.js';
import type { Finding, MysqlCheck, ServerRole } from './check.js';
import { controlStoreCheck } from './control-store.js';
import { privilegesCheck } from './privileges.js';
import { tableCacheCheck } from './table-cache.js';
import { variablesCheck } from './variables.js';
import { versionCheck } from './version.js';

export { describePrivileges, requiredPrivileges } from './privileges.js';
export type { Finding, MysqlCheck, ServerRole } from './check.js';

/** The registry: every MySQL-side check, run in this order. */
export const mysqlChecks: MysqlCheck[] = [versionCheck, variablesCheck, binlogCheck, privilegesCheck, tableCacheCheck, controlStoreCheck];

export interface ServerToCheck {
  label: string;
  role: ServerRole;
  url: string;
  tls?: TlsConfig;
  databases: string[];
  /** Shard servers: how many shard tables membermig writes there. */
  tables?: number;
  /** The legacy side: whether the config has a change source (cdc). */
  changeCapture?: boolean;
}

export interface ServerReport {
  label: string;
  role: ServerRole;
  version?: string;
  findings: Finding[];
}

/** Connects to one server and runs every check that applies; a failed connection is itself a finding. */
export async function checkMysqlServer(server: ServerToCheck, checks: MysqlCheck[] = mysqlChecks): Promise<ServerReport> {
  let conn;
  try {
    conn = await connectMysql(server.url, { database: undefined }, server.tls);
  } catch (e) {
    return { label: server.label, role: server.role, findings: [{ severity: 'error', message: `cannot connect: ${(e as Error).message}` }] };
  }
  try {
    const [rows] = await conn.query('SELECT @@version AS v');
    const version = String((rows as { v: string }[])[0]?.v);
    const findings: Finding[] = [];
    for (const check of checks) {
      if (!check.appliesTo.includes(server.role)) continue;
      try {
        findings.push(...(await check.run({ label: server.label, role: server.role, conn, databases: server.databases, tables: server.tables, changeCapture: server.changeCapture })));
      } catch (e) {
        findings.push({ severity: 'error', message: `check ${check.name} failed: ${(e as Error).message}` });
      }
    }
    return { label: server.label, role: server.role, version, findings };
  } finally {
    await conn.end();
  }
}
