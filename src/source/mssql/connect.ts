import { readFileSync } from 'node:fs';
import type sql from 'mssql';
import type { TlsConfig } from '../../config/schema.js';
import type { SqlParam } from './tsql.js';

/**
 * The one place that turns an mssql:// (or sqlserver://) URL into node-mssql options.
 *   mssql://user:password@host:1433/Database?encrypt=true&instance=NAME&app=membermig
 * Timeouts are raised: a keyset page or a CDC window can take longer than the 15 s default.
 */
export interface MssqlConnectOptions {
  tls?: TlsConfig;
  /** source.trust_server_certificate: accept a self-signed server certificate (test servers). */
  trustServerCertificate?: boolean;
  /** Per request; 0 = none. Default 10 minutes. */
  requestTimeoutMs?: number;
  poolMax?: number;
}

export function mssqlConfig(url: string, options: MssqlConnectOptions = {}): sql.config {
  const u = new URL(url);
  if (u.protocol !== 'mssql:' && u.protocol !== 'sqlserver:') throw new Error(`not an mssql:// URL (scheme ${u.protocol})`);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!database) throw new Error('the SQL Server URL must name a database, e.g. mssql://user@host:1433/MemberDB');
  const params = u.searchParams;
  const encryptParam = params.get('encrypt');
  const encrypt: boolean | 'strict' = encryptParam === null ? true : encryptParam === 'strict' ? 'strict' : encryptParam !== 'false';
  const tls = options.tls;
  const trustServerCertificate = options.trustServerCertificate === true || tls?.reject_unauthorized === false;
  const instanceName = params.get('instance') ?? undefined;
  const config: sql.config = {
    server: u.hostname,
    database,
    user: decodeURIComponent(u.username) || undefined,
    password: decodeURIComponent(u.password) || undefined,
    requestTimeout: options.requestTimeoutMs ?? 600_000,
    connectionTimeout: 30_000,
    pool: { max: options.poolMax ?? 4, min: 0, idleTimeoutMillis: 30_000 },
    options: {
      encrypt: encrypt as boolean,
      trustServerCertificate,
      appName: params.get('app') ?? 'membermig',
      // Zone-less values are the stored wall clock; we read date/time as text anyway.
      useUTC: true,
      ...(instanceName ? { instanceName } : {}),
      ...(tls && (tls.ca || tls.cert || tls.key)
        ? {
            cryptoCredentialsDetails: {
              ...(tls.ca ? { ca: readFileSync(tls.ca, 'utf8') } : {}),
              ...(tls.cert ? { cert: readFileSync(tls.cert, 'utf8') } : {}),
              ...(tls.key ? { key: readFileSync(tls.key, 'utf8') } : {}),
            },
          }
        : {}),
    },
  };
  // A port and a named instance exclude each other: the instance is found through SQL Browser.
  if (!instanceName) config.port = u.port ? Number(u.port) : 1433;
  return config;
}

/** host:port/database for messages: never the user's password. */
export function describeMssqlUrl(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || 1433}${u.pathname}`;
}

/**
 * node-mssql with tedious takes about 0.4 s to load: it is loaded on the first SQL Server
 * connection, so a command on a MySQL legacy side never pays for it.
 */
let driver: typeof sql | undefined;

export async function loadMssqlDriver(): Promise<typeof sql> {
  driver ??= (await import('mssql')).default;
  return driver;
}

export async function openMssqlPool(url: string, options: MssqlConnectOptions = {}): Promise<sql.ConnectionPool> {
  const mssql = await loadMssqlDriver();
  const pool = new mssql.ConnectionPool(mssqlConfig(url, options));
  try {
    await pool.connect();
  } catch (e) {
    // tedious messages name the server but not the password; say which server, without the URL.
    throw new Error(`cannot connect to SQL Server at ${describeMssqlUrl(url)}: ${(e as Error).message}`);
  }
  return pool;
}

/** A request with the statement's parameters bound with their declared types. */
export function bindRequest(request: sql.Request, params: SqlParam[]): sql.Request {
  // A request comes from a pool, and opening the pool loaded the driver.
  if (!driver) throw new Error('bindRequest before the SQL Server driver is loaded (loadMssqlDriver)');
  const types = driver;
  for (const p of params) {
    switch (p.type) {
      case 'tinyint':
        request.input(p.name, types.TinyInt, p.value);
        break;
      case 'smallint':
        request.input(p.name, types.SmallInt, p.value);
        break;
      case 'int':
        request.input(p.name, types.Int, p.value);
        break;
      case 'bigint':
        request.input(p.name, types.BigInt, p.value);
        break;
      case 'nvarchar':
        // nvarchar(4000) rather than MAX where it fits, so a key comparison can still seek.
        request.input(p.name, types.NVarChar(String(p.value).length <= 4000 ? 4000 : types.MAX), p.value);
        break;
      case 'lsn':
        request.input(p.name, types.Binary, p.value);
        break;
    }
  }
  return request;
}
