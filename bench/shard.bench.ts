import { createShardMap } from '../src/shard/map.js';
import type { Benchmark } from './types.js';

/** Routing speed: keys to (shard, database, server) per second, per shard function. */
const bench: Benchmark = {
  name: 'shard',
  description: 'shard map routing: locate() per second for integer and string keys',
  async run() {
    const N = 2_000_000;
    const figures = [];
    for (const fn of ['mod', 'crc32', 'murmur3'] as const) {
      const map = createShardMap({
        count: 1024,
        function: fn,
        database: 'member_{shard:04}',
        serverOf: Array.from({ length: 1024 }, (_, s) => (s < 512 ? 'a' : 'b')),
        servers: { a: { name: 'a', primary: 'mysql://a', replicas: [] }, b: { name: 'b', primary: 'mysql://b', replicas: [] } },
      });
      const keys = Array.from({ length: 1000 }, (_, i) => String(9_007_199_254_740_993n + BigInt(i * 7919)));
      let sink = 0;
      for (let i = 0; i < 100_000; i++) sink += map.locate(keys[i % 1000]!).shard; // warm-up
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < N; i++) sink += map.locate(keys[i % 1000]!).shard;
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      figures.push({ measure: `${fn} locate, 64-bit decimal keys`, value: N / seconds, unit: 'routes/s', note: `checksum ${sink % 997}` });
    }
    return { name: 'shard', figures, ratios: [] };
  },
};
export default bench;
