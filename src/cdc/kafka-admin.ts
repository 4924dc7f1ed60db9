import type { Admin, KafkaConfig } from 'kafkajs';

/**
 * A connected kafkajs admin client for `work`, disconnected after it. kafkajs is loaded here on
 * first use (about 0.2 s), so commands that never talk to Kafka do not pay for it.
 */
export async function withKafkaAdmin<T>(config: Pick<KafkaConfig, 'clientId' | 'brokers'> & Partial<KafkaConfig>, work: (admin: Admin) => Promise<T>): Promise<T> {
  const { Kafka, logLevel } = await import('kafkajs');
  const admin = new Kafka({ logLevel: logLevel.NOTHING, ...config }).admin();
  try {
    await admin.connect();
    return await work(admin);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** Connects a kafkajs client; a failure names Kafka and the config key (kafkajs names a host at most). */
export async function connectKafka(client: { connect(): Promise<void> }, brokers: string[]): Promise<void> {
  try {
    await client.connect();
  } catch (e) {
    throw new Error(`cannot reach Kafka at ${brokers.join(', ')} (cdc.kafka.brokers): ${(e as Error).message}`, { cause: e });
  }
}
