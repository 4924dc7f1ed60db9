import { spawn, execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { isAlive } from './process.js';

const execFileAsync = promisify(execFile);

/** A private MariaDB server in its own folder, on a free port of 127.0.0.1. */
export interface MariaDbInstance {
  url: string;
  port: number;
  pid: number;
  dataDir: string;
  stop(): Promise<void>;
}

export interface MariaDbOptions {
  /** Folder for data, socket and logs; created if missing, reused if it holds a data directory. */
  dir: string;
  port?: number;
  /** Row-based binlog with GTIDs, as Debezium and CDC need. */
  binlog?: boolean;
  serverId?: number;
  /** Durable settings (flush at every commit); off for tests, which trade durability for speed. */
  durable?: boolean;
  bufferPoolMb?: number;
  extraArgs?: string[];
}

/**
 * Ports this process has handed out. A port is free once its probe socket closes, so the OS may
 * offer it again to the next probe: Kafka's broker and controller were once given the same port
 * ("two listeners on the same port"), and the whole test run failed to start.
 */
const handedOut = new Set<number>();

/** A port nothing listens on now, and that this process has not handed out before. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await probePort();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('no free port found that this process had not handed out already');
}

function probePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Starts `mariadbd` (initialising the data folder on first use) and waits until it accepts connections. */
export async function startMariaDb(options: MariaDbOptions): Promise<MariaDbInstance> {
  const dataDir = join(options.dir, 'data');
  mkdirSync(options.dir, { recursive: true });
  // A private tmpdir per server: bootstrap temp tables in a shared /tmp have collided between servers.
  const tmpDir = join(options.dir, 'tmp');
  mkdirSync(tmpDir, { recursive: true });
  if (!existsSync(join(dataDir, 'mysql'))) await installDataDir(dataDir, tmpDir);
  const port = options.port ?? (await freePort());
  const args = [
    '--no-defaults',
    '--user=root',
    `--datadir=${dataDir}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    `--socket=${join(options.dir, 'mysqld.sock')}`,
    `--pid-file=${join(options.dir, 'mysqld.pid')}`,
    `--log-error=${join(options.dir, 'error.log')}`,
    `--tmpdir=${tmpDir}`,
    '--skip-name-resolve',
    '--character-set-server=utf8mb4',
    '--collation-server=utf8mb4_bin',
    `--innodb-buffer-pool-size=${options.bufferPoolMb ?? 256}M`,
    '--performance-schema=OFF',
    '--max-connections=500',
    '--local-infile=1',
    ...(options.durable ? [] : ['--innodb-flush-log-at-trx-commit=2', '--sync-binlog=0', '--innodb-doublewrite=0']),
    ...(options.binlog
      ? [`--server-id=${options.serverId ?? 1}`, '--log-bin=mysql-bin', '--binlog-format=ROW', '--binlog-row-image=FULL', '--log-slave-updates=ON']
      : []),
    ...(options.extraArgs ?? []),
  ];
  const child = spawn('mariadbd', args, { detached: true, stdio: 'ignore' });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error('mariadbd did not start');
  const url = `mysql://root@127.0.0.1:${port}/`;
  try {
    await waitForServer(url, 30_000, () => child.exitCode !== null);
  } catch (e) {
    stopPid(pid);
    const log = safeRead(join(options.dir, 'error.log')).split('\n').slice(-15).join('\n');
    throw new Error(`mariadbd on port ${port} did not come up: ${(e as Error).message}\n${log}`);
  }
  return { url, port, pid, dataDir, stop: () => stopMariaDb(pid) };
}

/**
 * A fresh data folder: copied from a template that is bootstrapped once per machine and MariaDB
 * version. Copying is faster than mariadb-install-db, and several bootstraps at once (parallel test
 * runs) have been seen to fail on each other's temporary tables.
 */
async function installDataDir(dataDir: string, tmpDir: string): Promise<void> {
  const template = await dataDirTemplate(tmpDir);
  cpSync(template, dataDir, { recursive: true });
}

async function dataDirTemplate(tmpDir: string): Promise<string> {
  const { stdout } = await execFileAsync('mariadbd', ['--version']);
  const version = /Ver\s+(\S+)/.exec(stdout)?.[1] ?? 'unknown';
  const template = join(tmpdir(), `membermig-mariadb-template-${version}`);
  if (existsSync(join(template, 'mysql', 'user.frm')) || existsSync(join(template, 'mysql', 'global_priv.frm'))) return template;
  // Bootstrap into a private folder, then rename: the rename is atomic, so a racing process either
  // sees no template or a whole one.
  const staging = `${template}.${process.pid}.${Date.now()}`;
  const args = ['--no-defaults', `--datadir=${staging}`, `--tmpdir=${tmpDir}`, '--auth-root-authentication-method=normal', '--skip-test-db', '--user=root'];
  try {
    await execFileAsync('mariadb-install-db', args);
  } catch {
    // One retry on a clean folder: bootstrap occasionally fails under heavy parallel load.
    rmSync(staging, { recursive: true, force: true });
    await execFileAsync('mariadb-install-db', args);
  }
  try {
    renameSync(staging, template);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another process won the race; use its template
  }
  return template;
}

async function waitForServer(url: string, timeoutMs: number, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (exited()) throw new Error('mariadbd exited');
    try {
      const conn = await mysql.createConnection({ uri: url, connectTimeout: 1000 });
      await conn.end();
      return;
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`timed out: ${(last as Error)?.message}`);
}

function stopPid(pid: number, signal: NodeJS.Signals = 'SIGTERM'): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM (a clean shutdown), then SIGKILL if it is still there after 20 s. */
export async function stopMariaDb(pid: number): Promise<void> {
  if (!stopPid(pid)) return;
  const deadline = Date.now() + 20_000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) stopPid(pid, 'SIGKILL');
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
