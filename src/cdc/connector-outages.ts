import type { Pool, PoolConnection } from 'mysql2/promise';
import type { ConnectorHealth } from './connect.js';

/**
 * cdc_connector_outages: when a connector was seen not running. Once it runs again, Debezium reads
 * the changes made meanwhile from legacy's log and sends them late; sync, caught up with the quiet
 * topics, cannot tell how far that has got. Only a clean verify begun after the outage ended
 * proves the shards have them (the sync_lag gate asks for one).
 */
type Db = Pool | PoolConnection;

/** An outage begins when a connector is first seen not running, and ends when first seen running again. */
export async function recordConnectorHealth(db: Db, seen: ConnectorHealth[]): Promise<void> {
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
