import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { RefusedError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { createMysqlPool } from '../mysql/connect.js';
import { isTransient, sleep } from '../mysql/retry.js';
import type { ShardLocation } from '../shard/map.js';
import type { ShardWriter } from './writer.js';

/**
 * The replication lag of the shard servers' replicas (`servers.<name>.replicas`), which serve reads
 * in both data centers. `full` writes rows into a primary as fast as it takes them, and a replica
 * applying them falls behind; so a copy's writes to a server wait while one of its replicas is more
 * than `copy.max_replica_lag_seconds` behind, or cannot tell (its replication stopped, or it does not
 * answer). The other servers' writes go on. `verify --repair`'s writes wait the same way
 * (writesWaitingForReplicas): a repair of a missing chunk is a copy of it.
 */

/** One replica's lag: seconds, or null with why it is not known. */
export interface ReplicaLag {
  /** `servers.<name>.replicas[i] (host:port)`: never the URL, which may hold a password. */
  replica: string;
  seconds: number | null;
  why?: string;
}

/** A reading serves every write to the server for this long. */
const READING_FRESH_MS = 1000;
/** While writes wait, the replicas are read again this often. */
const WAIT_STEP_MS = 1000;
/**
 * Bounded, as a hung replica (a frozen host, a failover) may leave a sent query unanswered for ever:
 * the waiting writes, and SIGINT/SIGTERM, hung with it. A timeout is a lag unknown, read again later.
 */
const STATUS_TIMEOUT_MS = 5000;

/**
 * The lag in a SHOW REPLICA STATUS row: MariaDB's Seconds_Behind_Master, MySQL 8's
 * Seconds_Behind_Source. NULL there (the SQL or IO thread not running) is an unknown lag.
 */
export function lagOfStatus(row: Record<string, unknown> | undefined): { seconds: number | null; why?: string } {
  if (!row) return { seconds: null, why: 'it is not a replica (SHOW REPLICA STATUS returned no row)' };
  const sql = row.Slave_SQL_Running ?? row.Replica_SQL_Running;
  const io = row.Slave_IO_Running ?? row.Replica_IO_Running;
  const behind = row.Seconds_Behind_Master ?? row.Seconds_Behind_Source;
  if (sql !== 'Yes') return { seconds: null, why: `its replication SQL thread is not running${row.Last_SQL_Error ? `: ${String(row.Last_SQL_Error)}` : ''}` };
  if (io !== 'Yes') return { seconds: null, why: `its replication IO thread is ${io === 'Connecting' ? 'still connecting' : 'not running'}` };
  if (behind === null || behind === undefined) return { seconds: null, why: 'it does not say how far behind it is' };
  return { seconds: Number(behind) };
}

/** Whether a lag lets writes go on: known and at most the limit. */
export function lagAllowsWrites(lag: ReplicaLag, maxSeconds: number): boolean {
  return lag.seconds !== null && lag.seconds <= maxSeconds;
}

interface Replica {
  name: string;
  pool: Pool;
}

export class ReplicaLagGate {
  private readonly replicas = new Map<string, Replica[]>();
  private readonly readings = new Map<string, { at: number; lags: Promise<ReplicaLag[]> }>();

  constructor(
    config: Pick<Config, 'servers'>,
    private readonly maxSeconds: number,
    private readonly logger: Logger,
  ) {
    for (const [server, s] of Object.entries(config.servers)) {
      if (s.replicas.length === 0) continue;
      this.replicas.set(
        server,
        s.replicas.map((url, i) => {
          const u = new URL(url);
          return { name: `servers.${server}.replicas[${i}] (${u.hostname}:${u.port || 3306})`, pool: createMysqlPool(url, { connectionLimit: 1, database: undefined }, s.tls) };
        }),
      );
    }
  }

  /**
   * Before any write: a replica that will never tell its lag is refused by name (not a replica, or
   * no right to ask), since every write to its server would wait for ever. One that does not answer
   * now is let be: writes to its server wait until it does.
   */
  async refuseReplicasThatCannotTell(): Promise<void> {
    for (const list of this.replicas.values()) {
      for (const replica of list) {
        try {
          const status = await replicaStatus(replica.pool);
          if (!status) throw new RefusedError(`${replica.name}: ${lagOfStatus(status).why}; list only the server's replicas there`);
        } catch (e) {
          if (e instanceof RefusedError) throw e;
          if (isTransient(e)) {
            this.logger.warn({ replica: replica.name, err: (e as Error).message }, 'replica does not answer: writes to its server wait until it does');
            continue;
          }
          throw new RefusedError(
            `${replica.name}: cannot read its replication status (the user needs REPLICA MONITOR on MariaDB, REPLICATION CLIENT on MySQL): ${(e as Error).message}`,
          );
        }
      }
    }
  }

  /** Waits while a replica of `server` is over the limit or cannot tell; throws once `stopping()`. */
  async waitFor(server: string, stopping: () => boolean): Promise<void> {
    if (!this.replicas.has(server)) return;
    let behind = (await this.lagsOf(server)).filter((lag) => !lagAllowsWrites(lag, this.maxSeconds));
    if (behind.length === 0) return;
    const since = Date.now();
    this.logger.warn(
      { server, replicas: behind, maxSeconds: this.maxSeconds },
      `writes to server ${server} wait for its replicas (copy.max_replica_lag_seconds: ${this.maxSeconds}): ${describe(behind)}`,
    );
    while (behind.length > 0) {
      if (stopping()) throw new Error(`stopped while writes to server ${server} waited for its replicas (${describe(behind)})`);
      await sleep(WAIT_STEP_MS);
      behind = (await this.lagsOf(server)).filter((lag) => !lagAllowsWrites(lag, this.maxSeconds));
    }
    this.logger.info({ server, waitedSeconds: (Date.now() - since) / 1000 }, `writes to server ${server} go on: its replicas caught up`);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.replicas.values()].flat().map((r) => r.pool.end()));
  }

  /** The server's replicas' lags, read at most once a READING_FRESH_MS for all the writes waiting on them. */
  lagsOf(server: string): Promise<ReplicaLag[]> {
    const last = this.readings.get(server);
    if (last && Date.now() - last.at < READING_FRESH_MS) return last.lags;
    const lags = Promise.all(this.replicas.get(server)!.map((replica) => readLag(replica)));
    this.readings.set(server, { at: Date.now(), lags });
    return lags;
  }
}

/**
 * The writer whose writes (upserts, deletes, loads) wait for the replicas of their server as
 * `gate.waitFor` says; its reads and pools are the writer's own.
 */
export function writesWaitingForReplicas(writer: ShardWriter, gate: ReplicaLagGate, stopping: () => boolean): ShardWriter {
  const serverOf = (shard: number | ShardLocation) => (typeof shard === 'number' ? writer.map.serverOf(shard) : shard.server).name;
  const waitFor = (shard: number | ShardLocation) => gate.waitFor(serverOf(shard), stopping);
  return {
    ...writer,
    upsertRows: async (shard, ...rest) => (await waitFor(shard), writer.upsertRows(shard, ...rest)),
    deleteKeys: async (shard, ...rest) => (await waitFor(shard), writer.deleteKeys(shard, ...rest)),
    loadBlocks: async (shard, ...rest) => (await waitFor(shard), writer.loadBlocks(shard, ...rest)),
    loadShards: async (parts) => {
      // One transaction on one server (ShardWriter.loadShards refuses a mix).
      if (parts.length > 0) await waitFor(parts[0]!.shard);
      return writer.loadShards(parts);
    },
  };
}

/** Every configured replica's lag, per server with replicas (for status). */
export async function readReplicaLags(config: Pick<Config, 'servers'>): Promise<Map<string, ReplicaLag[]>> {
  const gate = new ReplicaLagGate(config, Infinity, silentLogger);
  try {
    const servers = Object.entries(config.servers).filter(([, s]) => s.replicas.length > 0).map(([name]) => name);
    return new Map(await Promise.all(servers.map(async (server) => [server, await gate.lagsOf(server)] as const)));
  } finally {
    await gate.close();
  }
}

async function readLag(replica: Replica): Promise<ReplicaLag> {
  try {
    return { replica: replica.name, ...lagOfStatus(await replicaStatus(replica.pool)) };
  } catch (e) {
    return { replica: replica.name, seconds: null, why: `it does not answer: ${(e as Error).message}` };
  }
}

/**
 * SHOW REPLICA STATUS (MariaDB 10.5+, MySQL 8.0.22+), or SHOW SLAVE STATUS on servers older than
 * that. A connection whose query failed is destroyed: one that timed out still waits for its answer,
 * and handed out again (or ended by close) it held every later reading, and the run, for ever.
 */
async function replicaStatus(pool: Pool): Promise<Record<string, unknown> | undefined> {
  const conn = await pool.getConnection();
  const status = async (sql: string) => (await conn.query<RowDataPacket[]>({ sql, timeout: STATUS_TIMEOUT_MS }))[0][0];
  try {
    const row = await status('SHOW REPLICA STATUS').catch((e: { code?: string }) => {
      if (e.code !== 'ER_PARSE_ERROR') throw e;
      return status('SHOW SLAVE STATUS');
    });
    conn.release();
    return row;
  } catch (e) {
    conn.destroy();
    throw e;
  }
}

function describe(lags: ReplicaLag[]): string {
  return lags.map((l) => (l.seconds === null ? `${l.replica}: lag unknown, ${l.why}` : `${l.replica} ${l.seconds} s behind`)).join('; ');
}
