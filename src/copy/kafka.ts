import { Kafka, logLevel } from 'kafkajs';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { StartPosition } from '../source/reader.js';

/**
 * With cdc.kafka configured, the change topics' end offsets at copy start: sync may start there
 * instead of the source log position. Best effort: an unreachable broker is logged, not fatal,
 * since the source position is recorded either way.
 */
export async function kafkaStartPositions(config: Pick<Config, 'cdc'>, logger: Logger): Promise<StartPosition[]> {
  const kafka = config.cdc?.kafka;
  if (!kafka) return [];
  const topics = Array.isArray(kafka.topic) ? kafka.topic : [kafka.topic];
  const admin = new Kafka({ clientId: kafka.client_id, brokers: kafka.brokers, logLevel: logLevel.NOTHING, connectionTimeout: 5000, retry: { retries: 1 } }).admin();
  try {
    await admin.connect();
    const positions: StartPosition[] = [];
    for (const topic of topics) {
      const offsets = await admin.fetchTopicOffsets(topic);
      positions.push({ kind: 'kafka', position: { topic, offsets: Object.fromEntries(offsets.map((o) => [String(o.partition), o.high])) } });
    }
    // One row per source kind in cdc_start_positions: several topics share the 'kafka' row.
    return positions.length <= 1 ? positions : [{ kind: 'kafka', position: { topics: positions.map((p) => p.position) } }];
  } catch (e) {
    logger.warn({ error: (e as Error).message }, 'could not read the change topics end offsets; only the source position is recorded');
    return [];
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
