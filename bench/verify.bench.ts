import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { stringify } from 'yaml';
import { parseConfig, type Config } from '../src/config/index.js';
import { createLogger, silentLogger } from '../src/log.js';
import { connectMysql, createMysqlPool, quoteId } from '../src/mysql/connect.js';
import { startMariaDb, type MariaDbInstance } from '../src/sandbox/mariadb.js';
import { shardMapFromConfig } from '../src/shard/map.js';
import { createSourceReader, MysqlSourceReader } from '../src/source/index.js';
import { planChunks, verifyChunkRows } from '../src/verify/plan.js';
import { MysqlLegacySide, ShardSide } from '../src/verify/sides.js';
import { rangeWhere } from '../src/source/mysql/sql.js';
import type { ChunkKey } from '../src/store/leases.js';
import { setupControlStore } from '../src/store/control.js';
import { runVerify } from '../src/verify/index.js';
import { targetView } from '../src/verify/sql.js';
import type { Benchmark, BenchFigure, BenchRatio } from './types.js';

/**
 * verify speed: legacy vs 16 shards on two servers (crc32 shard function), next to the floor: a
 * plain chunked `COUNT(*), BIT_XOR(CRC32(CONCAT_WS(...)))` over the same chunks, on the same
 * servers, with the same concurrency, in the same run. Then 100 scattered differences planted on
 * the shards and a second verify that finds them (drill-down) without --recheck-after delay.
 * BENCH_ROWS chooses the table size (default 2,000,000).
 *
 * What verify's time includes and the floor's does not: describing the table, planning the chunks,
 * the control store (job, run and chunk rows, chunk claims and results, summing the run) and
 * closing its pools; the floor's pools are made before its timer and closed after it (both open
 * their connections inside it). Per row, verify computes more than the floor: the exact canonical
 * form (NULL markers, a binary separator) and the keyed row hash (a second CRC32 and a multiply),
 * whose multiplier on a shard also checks that the row belongs there (16 shards, crc32 of the key). The 100 differences fall into
 * 100 different chunks, so every chunk is drilled into: the legacy side reads each chunk at least
 * twice (checksum, then sub-range checksums).
 */

const SHARDS = 16;
const WORKERS = 2;
/** verify.chunk_rows, for both verify and the floor (they check the same chunks): the default (auto), or BENCH_CHUNK_ROWS. */
const CHUNK_ROWS = process.env.BENCH_CHUNK_ROWS ? Number(process.env.BENCH_CHUNK_ROWS) : 'auto';
const COLUMNS = ['member_id', 'name', 'email', 'phone', 'level', 'balance', 'created_at', 'updated_at', 'note'];

const DDL = (table: string) => `CREATE TABLE ${table} (
  member_id BIGINT NOT NULL PRIMARY KEY,
  name VARCHAR(32) NOT NULL,
  email VARCHAR(64) NOT NULL,
  phone VARCHAR(20) NULL,
  level TINYINT NOT NULL,
  balance DECIMAL(18,2) NOT NULL,
  created_at DATETIME(3) NOT NULL,
  updated_at DATETIME(6) NULL,
  note VARCHAR(100) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`;

/** Deterministic rows from MariaDB's seq engine, so every server generates the same data locally. */
const GENERATED = (rows: number, where = '') => `SELECT seq,
  CONCAT(ELT(1 + seq % 8, '张', '王', '李', '赵', '陈', '刘', '杨', '黄'), ELT(1 + (seq DIV 8) % 6, '伟', '芳', '娜', '敏', '静', '丽'), IF(seq % 5 = 0, CONCAT(' ', seq % 97), '')),
  CONCAT('user', seq, '@example.com'),
  IF(seq % 7 = 0, NULL, CONCAT('+86-1', LPAD(seq % 1000000000, 10, '0'))),
  seq % 5,
  CAST((seq * 137) % 10000000 / 100 AS DECIMAL(18,2)),
  TIMESTAMP('2020-01-01 00:00:00.000') + INTERVAL seq * 13 SECOND + INTERVAL seq % 1000 * 1000 MICROSECOND,
  IF(seq % 3 = 0, NULL, TIMESTAMP('2024-01-01 00:00:00.000000') + INTERVAL seq * 7 SECOND + INTERVAL seq % 999983 MICROSECOND),
  IF(seq % 4 = 0, NULL, REPEAT('备注x', seq % 20))
  FROM seq_1_to_${rows} ${where}`;

/** BENCH_PROFILE=1: wall time per side method (summed over concurrent calls), printed on stderr per run. */
function profileSides(): { report(label: string): void } {
  const totals = new Map<string, { ms: number; calls: number }>();
  if (!process.env.BENCH_PROFILE) return { report() {} };
  for (const [name, proto] of [
    ['legacy', MysqlLegacySide.prototype],
    ['shards', ShardSide.prototype],
  ] as const) {
    for (const method of Object.getOwnPropertyNames(proto)) {
      const original = (proto as unknown as Record<string, unknown>)[method];
      if (method === 'constructor' || typeof original !== 'function') continue;
      (proto as unknown as Record<string, unknown>)[method] = function (this: unknown, ...args: unknown[]) {
        const t = performance.now();
        const result = (original as (...a: unknown[]) => unknown).apply(this, args);
        if (!(result instanceof Promise)) return result;
        return result.finally(() => {
          const entry = totals.get(`${name}.${method}`) ?? { ms: 0, calls: 0 };
          entry.ms += performance.now() - t;
          entry.calls++;
          totals.set(`${name}.${method}`, entry);
        });
      };
    }
  }
  return {
    report(label) {
      process.stderr.write(`profile ${label}: ${[...totals].map(([k, v]) => `${k} ${Math.round(v.ms)}ms/${v.calls}`).join(', ')}\n`);
      totals.clear();
    },
  };
}

const bench: Benchmark = {
  name: 'verify',
  description: 'membermig verify (legacy vs 16 shards on 2 servers) beside the plain chunked COUNT/BIT_XOR(CRC32) floor; drill-down of 100 differences',
  async run() {
    const rows = Number(process.env.BENCH_ROWS ?? 2_000_000);
    const dir = mkdtempSync(join(tmpdir(), 'membermig-bench-verify-'));
    const servers: MariaDbInstance[] = [];
    const figures: BenchFigure[] = [];
    const ratios: BenchRatio[] = [];
    const say = (s: string) => process.stderr.write(`${new Date().toISOString()} ${s}\n`);
    try {
      // As the sandbox lays them out: the legacy stand-in, a control-store server, two shard servers.
      const [legacy, control, a, b] = await Promise.all(
        ['legacy', 'control', 'shard-a', 'shard-b'].map((name) =>
          startMariaDb({ dir: join(dir, name), bufferPoolMb: name === 'control' ? 128 : 1024, extraArgs: ['--innodb-log-file-size=512M'] }),
        ),
      );
      servers.push(legacy!, control!, a!, b!);
      const config = benchConfig(legacy!.url, control!.url, a!.url, b!.url);
      say(`generating ${rows} rows on the legacy server and the shards`);
      const t0 = performance.now();
      await generate(config, rows);
      figures.push({ measure: 'data generation (all servers)', value: (performance.now() - t0) / 1000, unit: 's', note: `${rows} rows` });
      await setupControlStore(config);

      // The chunks verify plans, for the floor.
      const reader = createSourceReader(config, silentLogger) as MysqlSourceReader;
      const spec = await reader.describeTable('member', config.tables.member!);
      const chunks = await planChunks(reader, new MysqlLegacySide(reader, spec, 'crc32', shardMapFromConfig(config), config.verify.statement_timeout_seconds * 1000), spec, verifyChunkRows(config));
      const bounds: (ChunkKey | null)[] = [null, ...chunks.map((c) => c.upperKey)];
      await reader.close();

      const profile = profileSides();
      const floorSeconds: number[] = [];
      const verifySeconds: number[] = [];
      for (let rep = 0; rep < 2; rep++) {
        say(`rep ${rep + 1}: floor`);
        floorSeconds.push(await floor(config, spec, bounds));
        say(`rep ${rep + 1}: verify (clean)`);
        const mem = sampleMemory();
        const t = performance.now();
        const clean = await runVerify(config, { logger: process.env.BENCH_PROFILE ? createLogger('debug') : silentLogger, workers: WORKERS, recheckAfterSeconds: 0 });
        verifySeconds.push((performance.now() - t) / 1000);
        const peak = mem.stop();
        profile.report(`clean verify ${rep + 1}`);
        if (clean.state !== 'clean' || clean.tables[0]!.rowsSource !== rows || clean.tables[0]!.rowsTarget !== rows) throw new Error(`bench data is not clean: ${JSON.stringify(clean.tables)}`);
        figures.push({ measure: `rep ${rep + 1}: floor (chunked COUNT + BIT_XOR(CRC32(CONCAT_WS)))`, value: floorSeconds[rep]!, unit: 's', note: `${bounds.length - 1} chunks x (1 legacy + 2 shard-server statements)` });
        figures.push({ measure: `rep ${rep + 1}: verify, clean`, value: verifySeconds[rep]!, unit: 's', note: `${Math.round(rows / verifySeconds[rep]!)} rows/s; peak RSS ${peak} MB; includes planning and control store` });
      }
      floorSeconds.forEach((f, i) => ratios.push({ name: `rep ${i + 1}: verify / floor`, value: verifySeconds[i]! / f, target: '<= 1.25', met: verifySeconds[i]! / f <= 1.25 }));
      const bestFloor = Math.min(...floorSeconds);
      const bestVerify = Math.min(...verifySeconds);
      ratios.push({ name: 'verify / floor (best of 2 each)', value: bestVerify / bestFloor, target: '<= 1.25', met: bestVerify / bestFloor <= 1.25 });

      say('verify (clean) with the md5 row hash');
      const tMd5 = performance.now();
      const md5 = await runVerify(config, { logger: silentLogger, workers: WORKERS, recheckAfterSeconds: 0, hash: 'md5' });
      const md5Seconds = (performance.now() - tMd5) / 1000;
      figures.push({ measure: 'verify, clean, verify.hash: md5', value: md5Seconds, unit: 's', note: `state ${md5.state}; ${(md5Seconds / bestVerify).toFixed(2)}x the crc32 run` });

      say('planting 100 scattered differences');
      await plant(config, 100);
      const mem = sampleMemory();
      const t = performance.now();
      const found = await runVerify(config, { logger: createLogger('warn'), workers: WORKERS, recheckAfterSeconds: 0, listDifferences: 1000 });
      const drillSeconds = (performance.now() - t) / 1000;
      const peak = mem.stop();
      profile.report('verify with differences');
      const kinds = countBy(found.differences.map((d) => d.kind));
      figures.push({ measure: 'verify with 100 scattered differences', value: drillSeconds, unit: 's', note: `found ${found.differences.length}: ${JSON.stringify(kinds)}; peak RSS ${peak} MB` });
      ratios.push({ name: 'verify with 100 differences / clean verify', value: drillSeconds / bestVerify, target: '< 2', met: drillSeconds / bestVerify < 2 });
      if (found.differences.length !== 100) throw new Error(`expected 100 differences, found ${found.differences.length} (${JSON.stringify(kinds)}, state ${found.state}, ${JSON.stringify(found.tables)})`);

      say('repairing them');
      const t2 = performance.now();
      const repaired = await runVerify(config, { logger: silentLogger, workers: WORKERS, recheckAfterSeconds: 0, repair: true });
      figures.push({ measure: 'verify --repair of the 100 differences', value: (performance.now() - t2) / 1000, unit: 's', note: `state ${repaired.state}, repaired ${repaired.tables[0]!.repaired}` });
      return { name: 'verify', figures, ratios };
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
export default bench;

function benchConfig(legacy: string, control: string, a: string, b: string): Config {
  const raw = {
    control: { url: `${control}membermig_control` },
    source: { kind: 'mysql', url: `${legacy}memberdb` },
    servers: { 'shard-a': { primary: a, max_connections: 4 }, 'shard-b': { primary: b, max_connections: 4 } },
    shards: {
      count: SHARDS,
      function: 'crc32',
      database: 'member_{shard:02}',
      placement: [
        { shards: `0-${SHARDS / 2 - 1}`, server: 'shard-a' },
        { shards: `${SHARDS / 2}-${SHARDS - 1}`, server: 'shard-b' },
      ],
    },
    tables: { member: { source: 'memberdb.member', target: 'member', shard_key: 'member_id' } },
    verify: { chunk_rows: CHUNK_ROWS, workers: WORKERS, recheck_after_seconds: 0 },
  };
  return parseConfig(stringify(raw), 'bench-verify.yaml');
}

async function generate(config: Config, rows: number): Promise<void> {
  const map = shardMapFromConfig(config);
  const jobs: Promise<void>[] = [];
  jobs.push(
    (async () => {
      const conn = await connectMysql(config.source.url.replace(/memberdb$/, ''));
      await conn.query('CREATE DATABASE memberdb');
      await conn.query('USE memberdb');
      await conn.query(DDL('memberdb.member'));
      await conn.query(`INSERT INTO memberdb.member ${GENERATED(rows)}`);
      await conn.end();
    })(),
  );
  for (const server of map.servers()) {
    jobs.push(
      (async () => {
        const conn = await connectMysql(server.primary);
        for (const shard of map.shardsOn(server.name)) {
          const db = quoteId(map.databaseOf(shard));
          await conn.query(`CREATE DATABASE ${db}`);
          await conn.query(`USE ${db}`);
          await conn.query(DDL(`${db}.member`));
          await conn.query(`INSERT INTO ${db}.member ${GENERATED(rows, `WHERE CRC32(seq) % ${SHARDS} = ${shard}`)}`);
        }
        await conn.end();
      })(),
    );
  }
  await Promise.all(jobs);
}

/** The floor: per chunk, COUNT + BIT_XOR(CRC32(CONCAT_WS)) on the legacy side and, per shard server, over its shards. */
async function floor(config: Config, spec: Parameters<typeof rangeWhere>[0], bounds: (ChunkKey | null)[]): Promise<number> {
  const map = shardMapFromConfig(config);
  const legacy = createMysqlPool(config.source.url, { connectionLimit: WORKERS });
  const pools = new Map<string, Pool>(map.servers().map((s) => [s.name, createMysqlPool(s.primary, { connectionLimit: WORKERS, database: undefined })]));
  const select = `COUNT(*), BIT_XOR(CRC32(CONCAT_WS('#', ${COLUMNS.join(', ')})))`;
  const view = targetView(spec);
  let next = 0;
  const t = performance.now();
  const worker = async () => {
    while (next < bounds.length - 1) {
      const i = next++;
      const where = rangeWhere(view, bounds[i]!, bounds[i + 1]!);
      await Promise.all([
        legacy.query<RowDataPacket[]>(`SELECT ${select} FROM member ${where}`),
        ...map.servers().map((s) =>
          pools.get(s.name)!.query<RowDataPacket[]>(
            map
              .shardsOn(s.name)
              .map((shard) => `SELECT ${shard}, ${select} FROM ${quoteId(map.databaseOf(shard))}.member ${where}`)
              .join(' UNION ALL '),
          ),
        ),
      ]);
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
  const seconds = (performance.now() - t) / 1000;
  await Promise.all([legacy.end(), ...[...pools.values()].map((p) => p.end())]);
  return seconds;
}

/** Differences spread over the key space: 40% changed, 30% deleted, 20% on a wrong shard (moved or copied), 10% extra. */
async function plant(config: Config, count: number): Promise<void> {
  const map = shardMapFromConfig(config);
  const rows = Number(process.env.BENCH_ROWS ?? 2_000_000);
  const conns = new Map<string, Awaited<ReturnType<typeof connectMysql>>>();
  for (const s of map.servers()) conns.set(s.name, await connectMysql(s.primary));
  const on = (shard: number) => ({ conn: conns.get(map.serverOf(shard).name)!, table: `${quoteId(map.databaseOf(shard))}.member` });
  for (let i = 0; i < count; i++) {
    const id = Math.floor(((i + 0.5) * rows) / count);
    const home = on(map.shardOf(id));
    const kind = i % 10;
    if (kind < 4) await home.conn.query(`UPDATE ${home.table} SET balance = balance + 0.01 WHERE member_id = ?`, [id]);
    else if (kind < 7) await home.conn.query(`DELETE FROM ${home.table} WHERE member_id = ?`, [id]);
    else if (kind === 7 || kind === 9) {
      // 7: moved to the next shard; 9: copied there, the home copy kept. Both: one wrong_shard difference.
      const wrong = on((map.shardOf(id) + 1) % SHARDS);
      const [found] = await home.conn.query<RowDataPacket[]>(`SELECT * FROM ${home.table} WHERE member_id = ?`, [id]);
      await wrong.conn.query(`INSERT INTO ${wrong.table} SET ?`, [found[0]]);
      if (kind === 7) await home.conn.query(`DELETE FROM ${home.table} WHERE member_id = ?`, [id]);
    } else {
      const extra = rows + 1 + i;
      const target = on(map.shardOf(extra));
      const [found] = await home.conn.query<RowDataPacket[]>(`SELECT * FROM ${home.table} WHERE member_id = ?`, [id]);
      await target.conn.query(`INSERT INTO ${target.table} SET ?`, [{ ...found[0], member_id: extra }]);
    }
  }
  for (const c of conns.values()) await c.end();
}

function countBy(list: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of list) out[k] = (out[k] ?? 0) + 1;
  return out;
}

function sampleMemory(): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  return {
    stop() {
      clearInterval(timer);
      return Math.round(Math.max(peak, process.memoryUsage().rss) / 2 ** 20);
    },
  };
}
