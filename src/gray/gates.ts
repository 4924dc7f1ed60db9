import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { fullJobAfterVerify } from '../copy/job.js';
import { partitionLagSeconds, SYNC_SILENT_MS } from '../cdc/offsets.js';
import { connectorRemedy, QUIET_TOPICS, readConnectors, type ConnectorHealth } from '../cdc/connect.js';
import { outageSince, recordConnectorHealth } from '../cdc/connector-outages.js';
import { mssqlCdcStatus } from '../cdc/mssql/position.js';
import { sourceTimeAheadMessage, sourceTimeAheadSeconds } from '../cdc/source-clock.js';
import type { Config } from '../config/schema.js';
import { openRecreatedShardTables, recreatedWarning } from '../store/recreated-tables.js';
import { FULL_COVERAGE, lastCleanVerifyStart } from '../verify/coverage.js';

/**
 * The gates in front of every move toward MySQL (a higher percentage, a longer allowlist, a shorter
 * denylist, a shim mode one step forward): a clean and recent verify of the table, a small sync lag,
 * no dead letter waiting. Each gate reports its numbers, so a refusal says exactly why.
 */
export type GateName = 'verify' | 'sync_lag' | 'dead_letters' | 'step_complete';

export interface GateResult {
  gate: GateName;
  ok: boolean;
  message: string;
}

type Db = Pool | PoolConnection;

/**
 * The connectors of cdc.kafka.connect, read and their outages recorded, for a gated change to pass
 * to checkGates: read before the settings lock is taken. Undefined when none are configured.
 */
export async function observeConnectors(pool: Pool, config: Config): Promise<ConnectorHealth[] | undefined> {
  const connect = config.cdc?.kafka?.connect;
  if (!connect) return undefined;
  const seen = await readConnectors(connect);
  await recordConnectorHealth(pool, seen);
  return seen;
}

/**
 * `connectors`: the connectors of cdc.kafka.connect as read (and recorded) before the caller took
 * its settings lock, so that a slow Kafka Connect never holds it; read here when not given.
 */
export async function checkGates(db: Db, config: Config, table: string, connectors?: ConnectorHealth[]): Promise<GateResult[]> {
  const gates = config.gray.gates;
  return [
    await verifyGate(db, table, gates.max_verify_age_minutes),
    await syncLagGate(db, config, table, gates.max_sync_lag_seconds, connectors),
    await deadLetterGate(db, table, gates.allow_dead_letters),
  ];
}

/**
 * A run is as old as its start: a run resumed after a kill finishes today, but the chunks its
 * first attempt checked were checked back then.
 */
async function verifyGate(db: Db, table: string, maxAgeMinutes: number): Promise<GateResult> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT id, state, differences, TIMESTAMPDIFF(SECOND, started_at, NOW(6)) AS age_s
       FROM verify_runs WHERE table_name = ? AND finished_at IS NOT NULL AND ${FULL_COVERAGE}
      ORDER BY finished_at DESC, id DESC LIMIT 1`,
    [table],
  );
  const run = rows[0];
  if (!run) return { gate: 'verify', ok: false, message: `no finished full verify of table ${table} (run membermig verify --tables ${table})` };
  const ageMinutes = Math.max(0, Number(run.age_s)) / 60;
  const age = `${ageMinutes.toFixed(1)} min ago`;
  if (run.state !== 'clean') {
    const n = Number(run.differences);
    const outcome = run.state === 'differences' ? `found ${n} difference${n === 1 ? '' : 's'}` : `ended ${run.state}${n > 0 ? ` with ${n} difference${n === 1 ? '' : 's'}` : ''}`;
    return { gate: 'verify', ok: false, message: `last verify of ${table} (run ${run.id}, ${age}) ${outcome}` };
  }
  // A partial run (--shards, --sample, --since) cannot vouch for the table, but differences it found
  // and left unrepaired are real: they count against the clean run if they were found after it
  // began (its chunks may have been checked before the damage). A run that also had a failed chunk
  // ends 'failed', not 'differences': its differences count all the same.
  const [later] = await db.query<RowDataPacket[]>(
    `SELECT id, state, differences, repaired, scope FROM verify_runs
      WHERE table_name = ? AND finished_at IS NOT NULL AND differences > repaired AND id <> ?
        AND finished_at > (SELECT started_at FROM verify_runs WHERE id = ?)
      ORDER BY finished_at DESC, id DESC LIMIT 1`,
    [table, run.id, run.id],
  );
  if (later[0]) {
    const l = later[0];
    return {
      gate: 'verify',
      ok: false,
      message: `verify run ${l.id} of ${table} (partial: ${JSON.stringify(typeof l.scope === 'string' ? JSON.parse(l.scope) : l.scope)}, ${l.state}) found ${l.differences} differences (${l.repaired} repaired) after the clean run ${run.id} began: repair them (verify --repair)`,
    };
  }
  // Shard tables init created empty after the copy (a clean run from before that vouches for rows now gone).
  const recreated = await openRecreatedShardTables(db).catch((e: { code?: string }) => (e.code === 'ER_NO_SUCH_TABLE' ? [] : Promise.reject(e)));
  const emptied = recreated.find((r) => r.table === table);
  if (emptied) return { gate: 'verify', ok: false, message: recreatedWarning(emptied) };
  // A full copy job of the table that began after the run did (full --restart empties the shard
  // tables and copies them again; so does a first copy that outlived a verify): the run checked
  // rows that are no longer there, whatever its age.
  const copy = await fullJobAfterVerify(db, table, run.id);
  if (copy) {
    return {
      gate: 'verify',
      ok: false,
      message: `full copy job ${copy.id} of ${table} (${copy.state}) began after the last clean verify (run ${run.id}): its rows are not verified; run membermig verify --tables ${table}`,
    };
  }
  if (ageMinutes > maxAgeMinutes) {
    return { gate: 'verify', ok: false, message: `last clean verify of ${table} (run ${run.id}) is ${ageMinutes.toFixed(1)} min old; gray.gates.max_verify_age_minutes is ${maxAgeMinutes}` };
  }
  return { gate: 'verify', ok: true, message: `verify run ${run.id} clean, ${age} (limit ${maxAgeMinutes} min)` };
}

/**
 * Sync lag over the partitions of the configured consumer group (all partitions when none is
 * configured). A partition that still has events to consume lags by now − the source time of the
 * last event applied; one that has consumed everything it saw lags by how long ago it said so.
 * The topics only show what reached them: a connector not running now, or not running at some
 * time since the table's last clean verify began, makes the lag unknown.
 */
async function syncLagGate(db: Db, config: Config, table: string, maxLagSeconds: number, connectors: ConnectorHealth[] | undefined): Promise<GateResult> {
  const parked = await parkedWritesProblem(db, maxLagSeconds);
  if (parked) return { gate: 'sync_lag', ok: false, message: parked };
  if (config.cdc?.mssql && !config.cdc.kafka) return directCdcLagGate(db, config, maxLagSeconds);
  const connect = config.cdc?.kafka?.connect;
  if (connect) {
    const down = (connectors ?? (await readConnectors(connect))).filter((c) => c.problem !== null);
    if (down.length > 0) {
      const remedies = down.map(connectorRemedy).filter((r): r is string => r !== null);
      const next = remedies.length > 0 ? `; ${remedies.join('; ')}, then verify` : '';
      return { gate: 'sync_lag', ok: false, message: `${down.map((c) => c.problem).join('; ')}: ${QUIET_TOPICS}; the lag is unknown${next}` };
    }
  }
  const outage = await outageSince(db, LAST_CLEAN_VERIFY_START, [table]);
  if (outage) {
    const message = outage.endedAt
      ? `connector ${outage.connector} was not running from ${outage.beganAt} to ${outage.endedAt} (${outage.problem}): the changes made then reached the topics ` +
        `only as it caught up, which the topics cannot show; a clean verify of ${table} begun after that proves the shards have them (membermig verify --tables ${table})`
      : `connector ${outage.connector} was seen not running at ${outage.beganAt} (${outage.problem}) and not seen running since` +
        (connect ? '' : ': this config has no cdc.kafka.connect to see it run again; set it (with the connectors that fill the topics), then verify');
    return { gate: 'sync_lag', ok: false, message };
  }
  const group = config.cdc?.kafka?.group;
  // The configured topics only: a topic sync no longer reads (renamed, or its table left the config) keeps its
  // last row, whose age grew for ever and shut the gate for good.
  const topics = config.cdc?.kafka ? [config.cdc.kafka.topic].flat() : [];
  const where = [...(group ? ['consumer_group = ?'] : []), ...(topics.length > 0 ? ['topic IN (?)'] : [])];
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT topic, partition_no, next_offset, high_watermark, last_source_ts_ms,
            CAST(UNIX_TIMESTAMP(NOW(6)) * 1000 AS SIGNED) AS now_ms,
            CAST(UNIX_TIMESTAMP(updated_at) * 1000 AS SIGNED) AS updated_ms
       FROM cdc_offsets${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}`,
    [...(group ? [group] : []), ...(topics.length > 0 ? [topics] : [])],
  );
  if (rows.length === 0) {
    return { gate: 'sync_lag', ok: false, message: `no sync has ever run${group ? ` for consumer group ${group}` : ''} (cdc_offsets is empty), so the lag is unknown` };
  }
  // A configured topic without a row, or a partition behind with no applied event's time: unknown, not zero.
  const unseen = topics.filter((topic) => !rows.some((r) => r.topic === topic));
  if (unseen.length > 0) return { gate: 'sync_lag', ok: false, message: `no sync progress recorded for topic ${unseen.join(', ')} yet, so its lag is unknown` };
  const untimed = rows.find((r) => r.high_watermark !== null && Number(r.high_watermark) > Number(r.next_offset) && r.last_source_ts_ms === null);
  if (untimed) {
    const behind = Number(untimed.high_watermark) - Number(untimed.next_offset);
    return { gate: 'sync_lag', ok: false, message: `${untimed.topic}[${untimed.partition_no}] is ${behind} events behind and has applied no event with a source time yet, so its lag is unknown` };
  }
  let worstSeconds = 0;
  let worstWhere = '';
  let offsetLag = 0;
  let reportedMsAgo = Infinity;
  for (const r of rows) {
    reportedMsAgo = Math.min(reportedMsAgo, Number(r.now_ms) - Number(r.updated_ms));
    const behind = r.high_watermark === null ? 0 : Math.max(0, Number(r.high_watermark) - Number(r.next_offset));
    offsetLag += behind;
    const lastSourceTsMs = r.last_source_ts_ms === null ? null : Number(r.last_source_ts_ms);
    const seconds = partitionLagSeconds({ behind, lastSourceTsMs, updatedMs: Number(r.updated_ms), nowMs: Number(r.now_ms) });
    // Untimed partitions behind were refused above: null here is a source time ahead of the control clock.
    if (seconds === null) {
      const ahead = sourceTimeAheadSeconds(Number(lastSourceTsMs), Number(r.now_ms)) ?? 0;
      return { gate: 'sync_lag', ok: false, message: sourceTimeAheadMessage(`${r.topic}[${r.partition_no}] is ${behind} events behind`, ahead) };
    }
    if (seconds >= worstSeconds) {
      worstSeconds = seconds;
      worstWhere = `${r.topic}[${r.partition_no}]`;
    }
  }
  // The events behind are counted against the broker's end as the last running sync saw it.
  const asOf = reportedMsAgo > SYNC_SILENT_MS ? ` as of the last sync report ${(reportedMsAgo / 1000).toFixed(0)} s ago (is sync running?)` : '';
  const figures = `sync lag ${worstSeconds.toFixed(1)} s (worst ${worstWhere}), ${offsetLag} events behind over ${rows.length} partitions${asOf}`;
  if (worstSeconds > maxLagSeconds) return { gate: 'sync_lag', ok: false, message: `${figures}; gray.gates.max_sync_lag_seconds is ${maxLagSeconds}` };
  const connectorNote = connect ? `; connectors ${connect.connectors.join(', ')} running` : config.cdc?.kafka ? '; connectors not checked (set cdc.kafka.connect)' : '';
  return { gate: 'sync_lag', ok: true, message: `${figures} (limit ${maxLagSeconds} s)${connectorNote}` };
}

const LAST_CLEAN_VERIFY_START = lastCleanVerifyStart();

/**
 * Writes sync parked for a shard server it could not write to (src/cdc/parking.ts): their offsets
 * or LSNs count as applied, so the positions look caught up while that server's shards are behind
 * by at least the age of the oldest. Older than the limit: refused, naming the servers.
 */
async function parkedWritesProblem(db: Db, maxLagSeconds: number): Promise<string | null> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT server, COUNT(*) AS n, TIMESTAMPDIFF(MICROSECOND, MIN(parked_at), NOW(6)) / 1e6 AS age_s
       FROM cdc_parked GROUP BY server ORDER BY server`,
  );
  const late = rows.filter((r) => Number(r.age_s) > maxLagSeconds);
  if (late.length === 0) return null;
  const list = late.map((r) => `${r.n} for server ${r.server}, the oldest ${Number(r.age_s).toFixed(1)} s old`).join('; ');
  return `sync has writes parked (the shard server could not take them): ${list}; the shards there are behind by at least that; gray.gates.max_sync_lag_seconds is ${maxLagSeconds}`;
}

/** Sync lag of the direct SQL Server CDC source: the worst capture instance (cdc_lsn_positions). */
async function directCdcLagGate(db: Db, config: Config, maxLagSeconds: number): Promise<GateResult> {
  const instances = await mssqlCdcStatus(db);
  if (instances.length === 0) {
    return { gate: 'sync_lag', ok: false, message: 'no direct CDC sync has run yet (cdc_lsn_positions is empty), so the lag is unknown' };
  }
  const unseen = Object.values(config.cdc?.mssql?.capture_instances ?? {}).filter((instance) => !instances.some((i) => i.instance === instance));
  if (unseen.length > 0) return { gate: 'sync_lag', ok: false, message: `capture instance ${unseen.join(', ')} has no sync position yet, so its lag is unknown` };
  const ahead = instances.find((i) => i.sourceAheadSeconds !== null);
  if (ahead) return { gate: 'sync_lag', ok: false, message: sourceTimeAheadMessage(`capture instance ${ahead.instance}`, ahead.sourceAheadSeconds!) };
  const worst = instances.reduce((a, b) => ((b.lagSeconds ?? Infinity) > (a.lagSeconds ?? Infinity) ? b : a));
  if (worst.lagSeconds === null) return { gate: 'sync_lag', ok: false, message: `capture instance ${worst.instance} has not applied or polled anything yet, so its lag is unknown` };
  const seconds = worst.lagSeconds;
  const figures = `sync lag ${seconds} s (worst capture instance ${worst.instance}, at LSN ${worst.lastLsn}) over ${instances.length} instances`;
  if (seconds > maxLagSeconds) return { gate: 'sync_lag', ok: false, message: `${figures}; gray.gates.max_sync_lag_seconds is ${maxLagSeconds}` };
  return { gate: 'sync_lag', ok: true, message: `${figures} (limit ${maxLagSeconds} s)` };
}

/** Dead letters of this table, and those no table could be told for (undecodable events). */
async function deadLetterGate(db: Db, table: string, allowed: boolean): Promise<GateResult> {
  const [rows] = await db.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM dead_letters WHERE resolved_at IS NULL AND (table_name = ? OR table_name IS NULL)', [table]);
  const n = Number(rows[0]?.n ?? 0);
  if (n === 0) return { gate: 'dead_letters', ok: true, message: 'no dead letters waiting' };
  if (allowed) return { gate: 'dead_letters', ok: true, message: `${n} dead letters waiting (allowed by gray.gates.allow_dead_letters)` };
  return { gate: 'dead_letters', ok: false, message: `${n} dead letters waiting for ${table} or naming no table (sync dead-letters lists them: fix and sync --retry-dead-letters, or sync skip-dead-letters; or set gray.gates.allow_dead_letters)` };
}

/** One line naming every failed gate with its numbers. */
export function describeFailures(results: GateResult[]): string {
  return results
    .filter((g) => !g.ok)
    .map((g) => `gate ${g.gate}: ${g.message}`)
    .join('; ');
}
