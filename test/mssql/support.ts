import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import sql from 'mssql';
import { mssqlConfig } from '../../src/source/mssql/connect.js';

/**
 * Finds a SQL Server for the live suites: MEMBERMIG_TEST_MSSQL_URL (an account that may create
 * databases and enable CDC, i.e. sysadmin), else a testcontainers SQL Server when a Docker engine
 * answers. Otherwise returns the reason the suites are skipped, for the test output.
 */
export type SqlServerFound = { url: string; trustServerCertificate: boolean; stop(): Promise<void> } | { skipReason: string };

const IMAGE = 'mcr.microsoft.com/mssql/server:2022-latest';

export async function findSqlServer(): Promise<SqlServerFound> {
  const external = process.env.MEMBERMIG_TEST_MSSQL_URL;
  if (external) return { url: external, trustServerCertificate: true, stop: async () => {} };
  const engine = await dockerEngineAnswers();
  if (engine !== true) return { skipReason: `MEMBERMIG_TEST_MSSQL_URL is not set and no Docker engine answers for testcontainers (${engine})` };
  try {
    return await startContainer();
  } catch (e) {
    return { skipReason: `a Docker engine answers, but no SQL Server container could be started: ${(e as Error).message}` };
  }
}

/** GET /_ping on the engine's unix socket: true, or why not. */
async function dockerEngineAnswers(): Promise<true | string> {
  const host = process.env.DOCKER_HOST;
  if (host && !host.startsWith('unix://')) return ping({ host: new URL(host.replace(/^tcp:/, 'http:')).hostname, port: Number(new URL(host.replace(/^tcp:/, 'http:')).port || 2375) }, host);
  const socketPath = host ? host.slice('unix://'.length) : '/var/run/docker.sock';
  if (!existsSync(socketPath)) return `${socketPath} does not exist`;
  return ping({ socketPath }, socketPath);
}

function ping(target: { socketPath: string } | { host: string; port: number }, label: string): Promise<true | string> {
  return new Promise((resolve) => {
    const req = request({ ...target, path: '/_ping', method: 'GET', timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? true : `${label} answered HTTP ${res.statusCode}`);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => resolve(`${label}: ${e.message}`));
    req.end();
  });
}

async function startContainer(): Promise<SqlServerFound> {
  // Loaded only when an engine answers: its HTTP client needs a newer Node than 20 to even load.
  const { GenericContainer, Wait } = await import('testcontainers');
  const password = `Mm-${randomBytes(9).toString('base64url')}1a`;
  const container = await new GenericContainer(IMAGE)
    .withEnvironment({ ACCEPT_EULA: 'Y', MSSQL_SA_PASSWORD: password, MSSQL_AGENT_ENABLED: 'true', MSSQL_PID: 'Developer' })
    .withExposedPorts(1433)
    .withWaitStrategy(Wait.forLogMessage(/SQL Server is now ready for client connections/))
    .withStartupTimeout(180_000)
    .start();
  const url = `mssql://sa:${encodeURIComponent(password)}@${container.getHost()}:${container.getMappedPort(1433)}/master`;
  return { url, trustServerCertificate: true, stop: async () => void (await container.stop()) };
}

/** A fresh database on the server, with the URL pointing at it, and a drop for afterAll. */
export async function createTestDatabase(serverUrl: string): Promise<{ url: string; database: string; admin: sql.ConnectionPool; drop(): Promise<void> }> {
  const database = `mmt_${randomBytes(4).toString('hex')}`;
  const admin = new sql.ConnectionPool(mssqlConfig(withDatabase(serverUrl, 'master'), { trustServerCertificate: true, requestTimeoutMs: 120_000 }));
  await admin.connect();
  await admin.request().batch(`CREATE DATABASE [${database}]`);
  return {
    url: withDatabase(serverUrl, database),
    database,
    admin,
    drop: async () => {
      try {
        // Disabling CDC first removes the database's capture and cleanup Agent jobs.
        await admin.request().batch(`USE [${database}]; IF (SELECT is_cdc_enabled FROM sys.databases WHERE database_id = DB_ID()) = 1 EXEC sys.sp_cdc_disable_db;`);
        await admin.request().batch(`USE master; ALTER DATABASE [${database}] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE [${database}]`);
      } finally {
        await admin.close();
      }
    },
  };
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + database;
  return u.toString();
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}
