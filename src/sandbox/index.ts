import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { silentLogger, type Logger } from '../log.js';
import { connectMysql } from '../mysql/connect.js';
import { startSandboxKafka, sandboxKafkaRunning, stopSandboxKafka, type SandboxKafka } from './cdc.js';
import { startMariaDb, stopMariaDb } from './mariadb.js';
import { isSandboxProcess } from './process.js';
import { RefusedError } from '../errors.js';

/**
 * A local sandbox on 127.0.0.1: a legacy stand-in MariaDB (binlog on), the control store and two
 * shard servers, each a private mariadbd with its data in one folder, plus (unless `kafka: false`)
 * a Kafka broker and Kafka Connect with Debezium capturing the legacy database, and a ready
 * membermig.yaml. `up` reuses what is still running, `down` stops only what the sandbox started.
 */
export const SANDBOX_SERVERS = ['legacy', 'control', 'shard-a', 'shard-b'] as const;
export type SandboxServerName = (typeof SANDBOX_SERVERS)[number];

export interface SandboxServer {
  name: SandboxServerName;
  port: number;
  pid: number;
  url: string;
  running?: boolean;
}

export interface SandboxState {
  dir: string;
  configPath: string;
  servers: SandboxServer[];
  /** The change-capture services (absent with --no-kafka). */
  kafka?: SandboxKafka;
}

export interface SandboxOptions {
  dir?: string;
  shardCount?: number;
  /** Start Kafka and Kafka Connect with Debezium (default true). */
  kafka?: boolean;
  logger?: Logger;
  /** A stop request: the servers this call started are stopped once their start ends, and it throws. */
  signal?: AbortSignal;
}

export const DEFAULT_SANDBOX_DIR = '.sandbox';
export const LEGACY_DATABASE = 'memberdb';

function stateFile(dir: string): string {
  return join(dir, 'sandbox.json');
}

export function readSandboxState(dir: string = DEFAULT_SANDBOX_DIR): SandboxState | null {
  const file = stateFile(resolve(dir));
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')) as SandboxState;
}

async function accepts(url: string): Promise<boolean> {
  try {
    const conn = await connectMysql(url, { connectTimeout: 1000 });
    await conn.end();
    return true;
  } catch {
    return false;
  }
}

export async function sandboxUp(options: SandboxOptions = {}): Promise<SandboxState> {
  const dir = resolve(options.dir ?? DEFAULT_SANDBOX_DIR);
  const logger = options.logger ?? silentLogger;
  mkdirSync(dir, { recursive: true });
  const previous = readSandboxState(dir);
  const configPath = join(dir, 'membermig.yaml');
  // Each server is recorded as soon as it runs: a start interrupted (Ctrl-C) or failed half-way leaves
  // servers that `sandbox down` can find and stop, and a failed start stops the ones it started.
  const recorded = new Map((previous?.servers ?? []).map((s) => [s.name, s]));
  const startedNow: SandboxServer[] = [];
  const record = (server: SandboxServer) => {
    startedNow.push(server);
    recorded.set(server.name, server);
    writeFileSync(stateFile(dir), JSON.stringify({ ...previous, dir, configPath, servers: [...recorded.values()] }, null, 2));
  };
  const starts = await Promise.allSettled(
    SANDBOX_SERVERS.map(async (name, i): Promise<SandboxServer> => {
      const known = previous?.servers.find((s) => s.name === name);
      if (known && isSandboxProcess(known.pid, dir) && (await accepts(known.url))) {
        logger.info({ server: name, port: known.port }, 'sandbox server already running');
        return { ...known, running: true };
      }
      const instance = await startMariaDb({ dir: join(dir, name), port: known?.port, binlog: name === 'legacy', serverId: i + 1 });
      const server = { name, port: instance.port, pid: instance.pid, url: instance.url };
      record(server);
      logger.info({ server: name, port: instance.port }, 'sandbox server started');
      return { ...server, running: true };
    }),
  );
  const failed = starts.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed || options.signal?.aborted) {
    for (const s of startedNow) await stopMariaDb(s.pid);
    throw failed ? failed.reason : new Error('stopped on request: the servers this run started are stopped again');
  }
  const servers = starts.map((r) => (r as PromiseFulfilledResult<SandboxServer>).value);
  const legacy = servers.find((s) => s.name === 'legacy')!;
  const conn = await connectMysql(legacy.url);
  await conn.query(`CREATE DATABASE IF NOT EXISTS ${LEGACY_DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  await conn.end();

  let kafka: SandboxKafka | undefined;
  if (options.kafka !== false) {
    if (options.signal?.aborted) {
      for (const s of startedNow) await stopMariaDb(s.pid);
      throw new Error('stopped on request: the servers this run started are stopped again');
    }
    kafka = await startSandboxKafka({ dir, previous: previous?.kafka, legacy: { url: legacy.url, port: legacy.port, database: LEGACY_DATABASE, table: 'member' }, logger });
  } else if (previous?.kafka) {
    await stopSandboxKafka(previous.kafka, dir); // --no-kafka: a broker left from an earlier `up` would only confuse
  }

  writeFileSync(configPath, sandboxConfigYaml(servers, options.shardCount ?? 16, kafka));
  const state: SandboxState = { dir, configPath, servers: servers.map(({ running: _r, ...s }) => s), ...(kafka ? { kafka: { ...kafka, running: undefined } } : {}) };
  writeFileSync(stateFile(dir), JSON.stringify(state, null, 2));
  return { ...state, servers, ...(kafka ? { kafka } : {}) };
}

function urlOf(servers: SandboxServer[], name: SandboxServerName, database = ''): string {
  return `mysql://root@127.0.0.1:${servers.find((s) => s.name === name)!.port}/${database}`;
}

export function sandboxConfigYaml(servers: SandboxServer[], shardCount: number, kafka?: SandboxKafka): string {
  // shard-a takes the odd one out; with one shard, shard-b holds none.
  const half = Math.ceil(shardCount / 2);
  const config = {
    control: { url: urlOf(servers, 'control', 'membermig_control') },
    source: { kind: 'mysql', url: urlOf(servers, 'legacy', LEGACY_DATABASE) },
    servers: {
      'shard-a': { primary: urlOf(servers, 'shard-a'), dc: 'dc1' },
      'shard-b': { primary: urlOf(servers, 'shard-b'), dc: 'dc2' },
    },
    shards: {
      count: shardCount,
      function: 'crc32',
      database: 'member_{shard:02}',
      placement: [{ shards: `0-${half - 1}`, server: 'shard-a' }, ...(shardCount > half ? [{ shards: `${half}-${shardCount - 1}`, server: 'shard-b' }] : [])],
    },
    tables: { member: { source: `${LEGACY_DATABASE}.member`, target: 'member', shard_key: 'member_id', updated_at: 'updated_at' } },
    ...(kafka ? { cdc: { kafka: { brokers: kafka.brokers, topic: kafka.topic, group: 'membermig-sync', replace_null_with_default: false, connect: { url: kafka.connectUrl, connectors: [kafka.connector] } } } } : {}),
  };
  return `# Written by membermig sandbox up: local servers on 127.0.0.1.\n${stringify(config)}`;
}

export async function sandboxStatus(dir: string = DEFAULT_SANDBOX_DIR): Promise<SandboxState | null> {
  const state = readSandboxState(dir);
  if (!state) return null;
  const servers = await Promise.all(state.servers.map(async (s) => ({ ...s, running: isSandboxProcess(s.pid, state.dir) && (await accepts(s.url)) })));
  const kafka = state.kafka ? { ...state.kafka, running: await sandboxKafkaRunning(state.kafka, state.dir) } : undefined;
  return { ...state, servers, ...(kafka ? { kafka } : {}) };
}

/**
 * Stops the servers this sandbox started (by PID, each checked to be still one of them); with
 * `purge` also deletes its folder, which must be a sandbox's (a typo must not delete a folder).
 */
export async function sandboxDown(dir: string = DEFAULT_SANDBOX_DIR, purge = false): Promise<{ stopped: string[]; purged: boolean }> {
  const state = readSandboxState(dir);
  if (purge && !state && existsSync(dir)) throw new RefusedError(`${resolve(dir)} is not a sandbox (no sandbox.json): nothing stopped, nothing deleted`);
  const home = state?.dir ?? resolve(dir);
  const stopped: string[] = [];
  if (state?.kafka) stopped.push(...(await stopSandboxKafka(state.kafka, home)));
  for (const s of state?.servers ?? []) {
    if (isSandboxProcess(s.pid, home)) {
      await stopMariaDb(s.pid);
      stopped.push(s.name);
    }
  }
  if (purge) rmSync(resolve(dir), { recursive: true, force: true });
  return { stopped, purged: purge };
}
