import { createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../log.js';
import { ChangesInFlight } from './in-flight.js';
import { behindOf, KafkaTopicsProbe, type TopicOffsets } from './in-flight-kafka.js';

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
