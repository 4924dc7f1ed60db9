import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { freePort } from '../sandbox/mariadb.js';
import { connectKafka } from './kafka-admin.js';

describe('connecting to Kafka', () => {
  it('a broker that refuses is named with the config key it came from (kafkajs says only "connect ECONNREFUSED")', async () => {
    const broker = `127.0.0.1:${await freePort()}`; // taken, then let go: nobody listens there
    const admin = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
    try {
      await expect(connectKafka(admin, [broker])).rejects.toThrow(new RegExp(`^cannot reach Kafka at ${broker} \\(cdc\\.kafka\\.brokers\\): .*ECONNREFUSED`));
    } finally {
      await admin.disconnect();
    }
  });
});
