import cliProgress from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { runFullCopy, type FullCopyResult, type TableProgress } from '../../copy/index.js';
import { STOPPED_ON_REQUEST } from '../../copy/types.js';
import { ExitCode } from '../../errors.js';
import { parseMetricsPort } from '../../metrics/port.js';
import type { Logger } from '../../log.js';
import { STOPS_ON_SIGNAL, stopOnSignal, type CliIO } from '../context.js';
import type { Run } from '../main.js';
import { renderTable } from '../render.js';

interface FullFlags {
  tables?: string[];
  dryRun?: boolean;
  restart?: boolean;
  maxRowsPerSec?: number;
  workers?: number;
  metricsPort?: string;
  metricsHost: string;
}

const positive = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${flag} expects a positive integer`);
  return n;
};

export function registerFull(program: Command, run: Run): void {
  program
    .command('full')
    .summary('Phase 1: copy every row from the legacy database into its shard, resumable after any crash')
    .description(
      [
        'Phase 1 of the cutover. Records the change-capture start position first (so sync replays from there),',
        'splits each table into primary-key chunks in the control store, then copies chunk by chunk into the',
        'shards with idempotent writes. Kill it at any moment and run it again: it resumes. Run it on several',
        'machines at once to share the job (chunk leases). A shard server that is down is retried with backoff',
        'while the others go on; what is left is listed at the end and a rerun finishes it.',
        '',
        'Exit codes: 0 every chunk copied and no rejected value; 1 chunks left or values rejected (--dry-run:',
        'the control store could not be read); 2 bad config, a source or shard table that does not match',
        '(nothing was written).',
      ].join('\n'),
    )
    .option('--tables <names>', 'copy only these tables (comma-separated logical names)', (v: string) => {
      const tables = [...new Set(v.split(',').map((s) => s.trim()).filter(Boolean))];
      if (tables.length === 0) throw new InvalidArgumentError('expected comma-separated table names');
      return tables;
    })
    .option('--dry-run', 'show the plan (chunks, shards, servers) and change nothing')
    .option('--restart', "drop this job's progress on purpose, empty its shard tables and copy again (refused while MySQL serves a table)")
    .option('--max-rows-per-sec <n>', 'limit the rows this process copies per second', positive('--max-rows-per-sec'))
    .option('--workers <n>', 'chunk workers in this process (default copy.workers)', positive('--workers'))
    .option('--metrics-port <port>', 'serve Prometheus metrics on http://HOST:PORT/metrics while copying (0 = any free port)')
    .option('--metrics-host <host>', 'address for --metrics-port', '127.0.0.1')
    .action(async (flags: FullFlags, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { config } = ctx.loadConfig();
        const metricsPort = flags.metricsPort === undefined ? undefined : parseMetricsPort(flags.metricsPort);
        const progress = progressReporter(ctx.io, ctx.logger, ctx.json);
        // prom-client (and what it loads) only when metrics are asked for: a fifth of the start-up otherwise.
        const metrics = metricsPort === undefined ? undefined : new (await import('../../metrics/index.js')).FullCopyMetrics(config);
        if (metrics) ctx.logger.info({ port: await metrics.listen(metricsPort!, flags.metricsHost) }, 'metrics at /metrics');
        // The first SIGINT/SIGTERM stops taking chunks and finishes the ones in hand (then the summary and
        // exit 1 say what is left); a second one ends the process at once.
        const stop = stopOnSignal(ctx, 'stopping: finishing the chunks in hand (again to quit at once)');
        let result: FullCopyResult;
        try {
          result = await runFullCopy(config, {
            signal: stop.signal,
            logger: ctx.logger,
            ...(flags.tables ? { tables: flags.tables } : {}),
            dryRun: flags.dryRun === true,
            restart: flags.restart === true,
            ...(flags.maxRowsPerSec ? { maxRowsPerSec: flags.maxRowsPerSec } : {}),
            ...(flags.workers ? { workers: flags.workers } : {}),
            onProgress: (p) => {
              progress.update(p);
              metrics?.update(p);
            },
          });
          metrics?.finish(result);
        } finally {
          progress.stop();
          await metrics?.close();
          stop.release(); // only now: a second signal meanwhile still gets its JSON document
        }
        // A plan whose control store could not be read is not clean: a real run would fail there too.
        // A rehearsal fails where the run will: shard servers that do not answer leave chunks undone there.
        const planned = result.state === 'planned' && !result.plan?.controlError && (result.plan?.unreachable ?? []).length === 0;
        const clean = planned || (result.state === 'done' && result.rejectedValues === 0 && result.errors.length === 0);
        return ctx.finish(clean ? ExitCode.Ok : ExitCode.Problems, result, renderFull);
      }, STOPS_ON_SIGNAL),
    );
}

/** Bars per table on a terminal (stderr); otherwise a plain log line per table every few seconds. */
function progressReporter(io: CliIO, logger: Logger, json: boolean) {
  const stderr = io.stderr as NodeJS.WriteStream;
  if (stderr.isTTY && !json) return chunkBars(stderr);
  let last = 0;
  return {
    update(tables: TableProgress[]) {
      const now = Date.now();
      if (now - last < 5000) return;
      last = now;
      for (const t of tables) logger.info({ table: t.table, chunksDone: t.chunksDone, chunksTotal: t.chunksTotal, rows: t.rowsDone }, 'full copy progress');
    },
    stop: () => {},
  };
}

/** One bar per table on a terminal stream. */
export function chunkBars(stream: NodeJS.WriteStream) {
  const bars = new cliProgress.MultiBar(
    { stream, format: ' {table} [{bar}] {value}/{total} chunks, {rows} rows', hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  const byTable = new Map<string, cliProgress.SingleBar>();
  return {
    update(tables: TableProgress[]) {
      for (const t of tables) {
        const payload = { table: t.table.padEnd(16), rows: t.rowsDone };
        const bar = byTable.get(t.table);
        if (!bar) {
          byTable.set(t.table, bars.create(t.chunksTotal, t.chunksDone, payload));
          continue;
        }
        // Copying starts while the key is still being cut into chunks: the total grows as chunks are planned.
        bar.setTotal(t.chunksTotal);
        bar.update(t.chunksDone, payload);
      }
    },
    stop: () => bars.stop(),
  };
}

export function renderFull(r: FullCopyResult): string {
  const out: string[] = [];
  if (r.plan) {
    out.push(`Plan (--dry-run, nothing was changed): ${r.plan.shards} shards, method ${r.method}`, '');
    out.push(renderTable(['table', 'source', 'target', 'chunks', 'rows per chunk'], r.plan.tables.map((t) => [t.table, t.source, t.target, t.chunks, t.chunkRows])));
    out.push('', renderTable(['server', 'shards'], r.plan.servers.map((s) => [s.server, s.shards])));
    const job = r.plan.job;
    if (job) {
      const progress = `${job.chunksDone}/${job.chunks} chunks done, ${job.rows} rows`;
      out.push('', job.action === 'resume' ? `job ${job.id} (${job.state}, ${progress}): a run goes on from there` : `job ${job.id} (${job.state}, ${progress}): --restart drops that progress, empties the shard tables and copies again`);
    }
    if (r.plan.controlError) {
      out.push('', r.plan.controlError, 'so whether a job exists that a run would go on with is unknown, and a run would fail there too');
    }
    if (r.plan.unreachable) out.push('', `shard server ${r.plan.unreachable.join(', ')} did not answer: a run now would leave the chunks of its shards undone (exit 1)`);
    return out.join('\n');
  }
  out.push(r.jobId === null ? `full copy (${r.job}): ${r.state}, no job opened or restarted` : `full copy job ${r.jobId} (${r.job}): ${r.state}, method ${r.method}`);
  for (const p of r.startPositions) out.push(`CDC start position (${p.kind}): ${JSON.stringify(p.position)}`);
  out.push('');
  const servers = r.servers.map((s) => s.server);
  out.push(
    renderTable(
      ['table', 'chunks done', 'rows', 'this run', ...servers],
      r.tables.map((t) => [t.table, `${t.chunksDone}/${t.chunks}`, t.rows, t.rowsThisRun, ...servers.map((s) => t.servers[s] ?? 0)]),
    ),
  );
  out.push('', renderTable(['server', 'shards', 'rows'], r.servers.map((s) => [s.server, s.shards, s.rows])));
  out.push('', `this run: ${r.rowsThisRun} rows in ${r.chunksThisRun} chunks, ${r.seconds.toFixed(1)} s, ${Math.round(r.rowsPerSec)} rows/s; rejected values: ${r.rejectedValues}`);
  if (r.left.length > 0) {
    // With errors (a value the target cannot hold, a missing table, a restarted job) a rerun alone does not help; after a stop it does.
    const problems = r.errors.filter((e) => e !== STOPPED_ON_REQUEST);
    out.push('', problems.length > 0 ? `${r.left.length} chunks are left; deal with the errors below, then run membermig full again:` : `${r.left.length} chunks are left; run membermig full again to finish them:`);
    out.push(renderTable(['table', 'chunk', 'state', 'keys after', 'keys up to', 'last error'], r.left.slice(0, 50).map((c) => [c.table, c.chunkNo, c.state, c.lowerKey?.join(',') ?? '(start)', c.upperKey?.join(',') ?? '(end)', c.error ?? ''])));
    if (r.left.length > 50) out.push(`... and ${r.left.length - 50} more (see --json)`);
  }
  for (const e of r.errors) out.push('', `error: ${e}`);
  return out.join('\n');
}
