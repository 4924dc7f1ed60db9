import { createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../log.js';
import { ChangesInFlight, type ChangeSourceProbe } from './in-flight.js';
import { behindOf, KafkaTopicsProbe, type TopicOffsets } from './in-flight-kafka.js';
import { kafkaClient, kafkaServices } from '../../test/services/kafka-env.js';

describe('behindOf', () => {
  const offsets = (entries: [string, bigint][]): TopicOffsets => new Map(entries);

  it('names the partitions whose committed offset is below the end wanted', () => {
    const ends = offsets([
      ['t/0', 10n],
      ['t/1', 5n],
      ['u/0', 0n],
    ]);
    expect(behindOf(ends, offsets([['t/0', 10n], ['t/1', 4n], ['u/0', 0n]]))).toEqual(['t/1']);
    expect(behindOf(ends, offsets([['t/0', 12n], ['t/1', 5n]]))).toEqual([]);
  });

  it('a partition with nothing committed is behind any end above 0', () => {
    expect(behindOf(offsets([['t/0', 1n], ['t/1', 0n]]), offsets([]))).toEqual(['t/0']);
  });

  it('compares 64-bit offsets exactly', () => {
    expect(behindOf(offsets([['t/0', 9007199254740993n]]), offsets([['t/0', 9007199254740992n]]))).toEqual(['t/0']);
  });
});

describe('ChangesInFlight with a Kafka that cannot be asked', () => {
  it('gives up waiting with one warning, never throws, and asks again in the next pass', async () => {
    // A port that refuses connections: taken, then closed.
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const p = (server.address() as { port: number }).port;
        server.close(() => resolve(p));
      });
    });
    const out = new PassThrough();
    let logs = '';
    out.on('data', (d: Buffer) => (logs += d.toString()));
    const inFlight = new ChangesInFlight(new KafkaTopicsProbe({ brokers: [`127.0.0.1:${port}`], group: 'g', topics: ['t'], clientId: 'test' }), createLogger('warn', out));
    try {
      expect(await inFlight.ends()).toBeNull();
      await inFlight.waitApplied(null);
      expect(await inFlight.ends()).toBeNull(); // given up: not asked again in this pass
      expect(logs.match(/cannot ask Kafka how far sync is/g)).toHaveLength(1);
      inFlight.beginPass();
      expect(await inFlight.ends()).toBeNull();
      expect(logs.match(/cannot ask Kafka how far sync is/g)).toHaveLength(2);
    } finally {
      await inFlight.close();
    }
  }, 60_000);
});

describe('ChangesInFlight when a question fails between others', () => {
  it('stops waiting once it has said it gives up, though the next question would have been answered', async () => {
    // Our probe interface (not a broker): the group lookup fails once (a broker's NOT_COORDINATOR after a
    // restart), the partitions stay behind. The wait went on polling for its whole limit after the warning.
    let asked = 0;
    const probe: ChangeSourceProbe<string> = {
      name: 'Kafka',
      end: async () => 'end',
      behind: async () => (asked++, ['t/0']),
      neverApplied: async () => Promise.reject(new Error('This is not the correct coordinator for this group')),
      close: async () => {},
    };
    const out = new PassThrough();
    let logs = '';
    out.on('data', (d: Buffer) => (logs += d.toString()));
    const inFlight = new ChangesInFlight(probe, createLogger('warn', out), 600_000);
    const t0 = Date.now();
    await inFlight.waitApplied(await inFlight.ends());
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(asked).toBe(0);
    expect(logs).toContain('cannot ask Kafka how far sync is (This is not the correct coordinator for this group): re-checks wait for the mirror');
  }, 20_000);
});

describe('ChangesInFlight with a sync consumer group that never committed', () => {
  it('gives up at once, saying no sync has run, instead of waiting out the limit on every pass', async () => {
    const topic = `mm-inflight-${Date.now()}`;
    const kafka = kafkaClient();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'k', value: 'v' }] });
    await producer.disconnect();
    // A broker just started answers the first group lookups with NOT_COORDINATOR while its offsets topic loads,
    // and the probe then rightly gives up: ask until the broker answers, first.
    const admin = kafka.admin();
    await admin.connect();
    for (let tries = 1; ; tries++) {
      const answered = await admin.fetchOffsets({ groupId: `never-${topic}`, topics: [topic] }).then(() => true, (e: Error) => (tries < 60 ? false : Promise.reject(e)));
      if (answered) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    await admin.disconnect();
    const out = new PassThrough();
    let logs = '';
    out.on('data', (d: Buffer) => (logs += d.toString()));
    // Ten minutes: waiting it out would fail the test's own timeout.
    const inFlight = new ChangesInFlight(new KafkaTopicsProbe({ brokers: kafkaServices().brokers, group: `never-${topic}`, topics: [topic], clientId: 'test' }), createLogger('warn', out), 600_000);
    try {
      const end = await inFlight.ends();
      expect(end).not.toBeNull();
      await inFlight.waitApplied(end);
      expect(logs).toContain(`the sync consumer group never-${topic} has committed no offset on ${topic} (no sync has run): re-checks do not wait for sync`);
    } finally {
      await inFlight.close();
    }
  }, 30_000);
});
