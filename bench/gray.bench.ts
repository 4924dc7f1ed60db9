import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseConfig } from '../src/config/load.js';
import { setGray } from '../src/gray/operations.js';
import { TableRouter } from '../src/gray/route.js';
import { startMariaDb } from '../src/sandbox/mariadb.js';
import { createShim, type Shim } from '../src/shim/index.js';
import { openControlStore, setupControlStore } from '../src/store/control.js';
import type { Benchmark, BenchFigure, BenchRatio } from './types.js';

/**
 * Gray release speed: (1) routing decisions per second in process, and how many garbage
 * collections they caused (allocation-free means none); (2) the time from `gray set` committing
 * to all of 3 running shims acting on it, against a private MariaDB.
 */
const bench: Benchmark = {
  name: 'gray',
  description: 'shim routing decisions per second; time from gray set to 3 shims acting on it (private MariaDB)',
  async run() {
    const figures: BenchFigure[] = [];
    const ratios: BenchRatio[] = [];
    const decisions = measureDecisions();
    figures.push(...decisions.figures);
    const best = Math.min(...decisions.rates);
    ratios.push({ name: 'routing decisions/s (slowest id kind)', value: best, target: '>= 5,000,000', met: best >= 5_000_000 });

    const propagation = await measurePropagation();
    figures.push(...propagation.figures);
    ratios.push({ name: 'gray set -> all 3 shims acting, worst (s)', value: propagation.worstSeconds, target: '<= 2', met: propagation.worstSeconds <= 2 });
    return { name: 'gray', figures, ratios };
  },
};
export default bench;

function measureDecisions(): { figures: BenchFigure[]; rates: number[] } {
  const router = new TableRouter(
    { mode: 'dual_mysql_primary' },
    { read_bp: 1_000, write_bp: 500, salt: '9f86d081884c7d65', allow: ['1', '2', '3'], deny: ['4', 'vip-1'] },
  );
  const numbers = Array.from({ length: 4096 }, (_, i) => 100_000_000 + i * 7919);
  const strings = numbers.map(String);
  const figures: BenchFigure[] = [];
  const rates: number[] = [];
  for (const [kind, ids] of [['integer ids', numbers], ['decimal-string ids', strings]] as const) {
    const N = 10_000_000;
    let sink = 0;
    for (let i = 0; i < 500_000; i++) sink += router.route(ids[i & 4095]!).read === 'mysql' ? 1 : 0; // warm-up
    let gcs = 0;
    const observer = new PerformanceObserver((list) => (gcs += list.getEntries().length));
    observer.observe({ entryTypes: ['gc'] });
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) sink += router.route(ids[i & 4095]!).read === 'mysql' ? 1 : 0;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    observer.disconnect();
    rates.push(N / seconds);
    figures.push({ measure: `route(), ${kind}`, value: N / seconds, unit: 'decisions/s', note: `${gcs} GCs in ${N / 1e6}M decisions; ${((sink / N) * 100).toFixed(1)}% read MySQL` });
  }
  return { figures, rates };
}

function shimRouteRate(shim: Shim): number {
  const N = 5_000_000;
  let sink = 0;
  for (let i = 0; i < 1_000_000; i++) sink += shim.route('member', 100_000_000 + (i & 4095)).read === 'mysql' ? 1 : 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) sink += shim.route('member', 100_000_000 + (i & 4095)).read === 'mysql' ? 1 : 0;
  const rate = N / (Number(process.hrtime.bigint() - t0) / 1e9);
  return sink >= 0 ? rate : 0;
}

async function measurePropagation(): Promise<{ figures: BenchFigure[]; worstSeconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'membermig-bench-gray-'));
  const server = await startMariaDb({ dir });
  const shims: Shim[] = [];
  try {
    const config = parseConfig(
      JSON.stringify({
        control: { url: `${server.url}membermig_bench_control` },
        source: { kind: 'mysql', url: `${server.url}legacy` },
        servers: { a: { primary: server.url } },
        shards: { count: 16, function: 'crc32', database: 'm_{shard:02}', placement: [{ shards: '0-15', server: 'a' }] },
        tables: { member: { source: 'legacy.member', target: 'member', shard_key: 'member_id' } },
      }),
      'bench-config.json',
    );
    await setupControlStore(config);
    for (let i = 0; i < 3; i++) shims.push(await createShim({ config }));
    const store = openControlStore(config, 1);
    const samples: number[] = [];
    try {
      for (let trial = 0; trial < 12; trial++) {
        const read = trial % 2 === 0 ? 10_000 : 0;
        const want = read > 0 ? 'mysql' : 'legacy';
        await new Promise((r) => setTimeout(r, 137 * (trial % 5))); // vary the phase against the poll timer
        const t0 = performance.now();
        await setGray(store, config, 'member', { read }, { operator: 'bench', reason: 'bench', force: true });
        while (!shims.every((s) => s.route('member', 424242).read === want)) await new Promise((r) => setTimeout(r, 5));
        samples.push((performance.now() - t0) / 1000);
      }
      // The public API with a real setting in force (every decision computes a bucket).
      await setGray(store, config, 'member', { read: 1_000, write: 500 }, { operator: 'bench', reason: 'bench', force: true });
      await shims[0]!.refresh();
    } finally {
      await store.close();
    }
    samples.sort((a, b) => a - b);
    const viaShim = shimRouteRate(shims[0]!);
    const median = samples[Math.floor(samples.length / 2)]!;
    const worst = samples[samples.length - 1]!;
    return {
      figures: [
        { measure: 'gray set -> 3 shims acting, median', value: median, unit: 's', note: `${samples.length} changes, poll every 500 ms` },
        { measure: 'gray set -> 3 shims acting, worst', value: worst, unit: 's' },
        { measure: 'Shim.route(table, id), integer ids', value: viaShim, unit: 'decisions/s', note: 'the public API: table lookup + route, read 10% write 5%' },
      ],
      worstSeconds: worst,
    };
  } finally {
    await Promise.all(shims.map((s) => s.close()));
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
