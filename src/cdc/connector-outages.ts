import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
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
 * again. Only what Connect itself told counts: a Connect this host could not reach says nothing of
 * Debezium (a gated step refuses then all the same), and would cost a verify of every table.
 */
export async function recordConnectorHealth(db: Db, seen: ConnectorHealth[]): Promise<void> {
  for (const c of seen.filter((h) => h.answered)) {
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

/** The latest outage (an open one first), for status. */
export async function latestConnectorOutage(db: Db): Promise<ConnectorOutage | null> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT connector, problem, DATE_FORMAT(began_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS began, DATE_FORMAT(ended_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS ended
       FROM cdc_connector_outages ORDER BY ended_at IS NULL DESC, ended_at DESC LIMIT 1`,
  );
  const r = rows[0];
  return r ? { connector: r.connector, problem: r.problem, beganAt: r.began, endedAt: r.ended } : null;
}
