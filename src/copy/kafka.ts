import { withKafkaAdmin } from '../cdc/kafka-admin.js';
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
  try {
    const positions = await withKafkaAdmin({ clientId: kafka.client_id, brokers: kafka.brokers, connectionTimeout: 5000, retry: { retries: 1 } }, async (admin) => {
      const out: StartPosition[] = [];
      for (const topic of topics) {
        const offsets = await admin.fetchTopicOffsets(topic);
        out.push({ kind: 'kafka', position: { topic, offsets: Object.fromEntries(offsets.map((o) => [String(o.partition), o.high])) } });
      }
      return out;
    });
    // One row per source kind in cdc_start_positions: several topics share the 'kafka' row.
    return positions.length <= 1 ? positions : [{ kind: 'kafka', position: { topics: positions.map((p) => p.position) } }];
  } catch (e) {
    logger.warn({ error: (e as Error).message }, 'could not read the change topics end offsets; only the source position is recorded');
    return [];
  }
}
