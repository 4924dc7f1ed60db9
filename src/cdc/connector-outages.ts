import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { isoTime } from '../mysql/iso-time.js';
import type { ConnectorHealth } from './connect.js';

/**
 * cdc_connector_outages: when a connector was seen not running. Once it runs again, Debezium reads
 * the changes made meanwhile from legacy's log and sends them late; sync, caught up with the quiet
 * topics, cannot tell how far that has got. Only a clean verify begun after the outage ended
 * proves the shards have them (the sync_lag gate asks for one).
 */
type Db = Pool | PoolConnection;

/**
 * An outage begins when a connector is first seen not running, and ends when first seen running
 * again. A Connect that could not be asked counts as not running (when the Connect worker is down,
 * so is Debezium): it costs a verify, never a missed change. `configured`: the connectors the
 * caller's config names; an open outage of another one (renamed, removed) is ended now, since nobody
 * will see it running again, and the verify it then asks for covers what it missed.
 */
export async function recordConnectorHealth(db: Db, seen: ConnectorHealth[], configured: string[] = seen.map((c) => c.name)): Promise<void> {
  if (configured.length > 0) {
    await db.query(`UPDATE cdc_connector_outages SET ended_at = NOW(6) WHERE ended_at IS NULL AND connector NOT IN (${configured.map(() => '?').join(', ')})`, configured);
  }
  for (const c of seen) {
    if (c.problem === null) {
      await db.query('UPDATE cdc_connector_outages SET ended_at = NOW(6) WHERE connector = ? AND ended_at IS NULL', [c.name]);
    } else {
      await db.query(
        `INSERT INTO cdc_connector_outages (connector, problem)
         SELECT ?, ? FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM cdc_connector_outages WHERE connector = ? AND ended_at IS NULL)`,
        [c.name, c.problem, c.name],
      );
    }
  }
}

export interface ConnectorOutage {
  connector: string;
  problem: string;
  /** ISO 8601 UTC. */
  beganAt: string;
  /** ISO 8601 UTC; null while it lasts. */
  endedAt: string | null;
}

const OUTAGE_COLUMNS = `connector, problem, ${isoTime('began_at')}, ${isoTime('ended_at')}`;

function outageOf(r: RowDataPacket): ConnectorOutage {
  return { connector: r.connector, problem: r.problem, beganAt: r.began_at, endedAt: r.ended_at };
}

/** The latest outage (an open one first), for status: of the configured connectors when the config names some. */
export async function latestConnectorOutage(db: Db, configured: string[] = []): Promise<ConnectorOutage | null> {
  const only = configured.length > 0 ? `WHERE connector IN (${configured.map(() => '?').join(', ')})` : '';
  const [rows] = await db.query<RowDataPacket[]>(`SELECT ${OUTAGE_COLUMNS} FROM cdc_connector_outages ${only} ORDER BY ended_at IS NULL DESC, ended_at DESC LIMIT 1`, configured);
  return rows[0] ? outageOf(rows[0]) : null;
}

/**
 * The outage still open, else the one that ended last, if it ended after `since` (an SQL
 * expression of a control-store time, NULL for "ever"; `values` are its parameters). Any
 * connector's: a step whose config names connectors has ended the open outages of the others
 * (recordConnectorHealth).
 */
export async function outageSince(db: Db, since: string, values: unknown[]): Promise<ConnectorOutage | null> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT ${OUTAGE_COLUMNS} FROM cdc_connector_outages
      WHERE COALESCE(ended_at, NOW(6)) > COALESCE((${since}), '1000-01-01')
      ORDER BY ended_at IS NULL DESC, ended_at DESC LIMIT 1`,
    values,
  );
  return rows[0] ? outageOf(rows[0]) : null;
}
