import type { Command } from 'commander';
import { ExitCode, RefusedError } from '../../errors.js';
import { collectStatus, type Status } from '../../store/status.js';
import { renderSyncStatus } from '../../cdc/status.js';
import type { Run } from '../main.js';
import { renderTable } from '../render.js';
import { renderFullCopyStatus } from '../../copy/status.js';

export function registerStatus(program: Command, run: Run): void {
  program
    .command('status')
    .summary('Any phase: one view of the shard map, jobs, workers and the control store')
    .description(
      [
        'Shows what membermig knows: the shard map (shards per server), the configured tables, and from the',
        'control store every job with its chunk progress and the workers holding leases.',
        'Use --json in CI gates and dashboards.',
        '',
        'Exit codes: 0 when the control store is reachable and migrated; 1 otherwise.',
      ].join('\n'),
    )
    .option('--watch [seconds]', 'refresh every N seconds (default 2) until interrupted')
    .action(async (opts: { watch?: string | boolean }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { config } = ctx.loadConfig();
        const interval = opts.watch === undefined || opts.watch === false ? 0 : opts.watch === true ? 2 : Number(opts.watch);
        if (!(interval >= 0)) throw new RefusedError(`--watch takes a number of seconds, got "${String(opts.watch)}"`);
        let exitCode: ExitCode = ExitCode.Ok;
        for (let stop = false; !stop; ) {
          const status = await collectStatus(config);
          const healthy = status.control.reachable && status.control.exists === true && status.control.appliedVersion === status.control.latestVersion;
          if (interval > 0 && !ctx.json && process.stdout.isTTY) ctx.io.stdout.write('\x1b[2J\x1b[H');
          exitCode = ctx.finish(healthy ? ExitCode.Ok : ExitCode.Problems, status, renderStatus);
          stop = interval === 0 || (await interrupted(interval * 1000));
        }
        return exitCode;
      }),
    );
}

export function renderStatus(s: Status): string {
  const out: string[] = [];
  const c = s.control;
  if (!c.reachable) out.push(`control store ${c.database}: unreachable (${c.error})`);
  else if (!c.exists) out.push(`control store ${c.database}: not initialised (run membermig init)`);
  else out.push(`control store ${c.database}: schema ${c.appliedVersion} of ${c.latestVersion}${c.appliedVersion === c.latestVersion ? '' : ' (run membermig init)'}`);
  out.push(`shards: ${s.shards.count} (${s.shards.function}), databases ${s.shards.database}`, '');
  out.push(renderTable(['server', 'dc', 'shards', 'replicas'], s.servers.map((v) => [v.name, v.dc, v.shards, v.replicas])), '');
  out.push(renderTable(['table', 'source', 'target', 'shard key'], s.tables.map((t) => [t.name, t.source, t.target, t.shardKey])));
  if (s.jobs.length > 0) {
    out.push('');
    const rows = s.jobs.flatMap((j) =>
      (j.chunks.length > 0 ? j.chunks : [null]).map((ch) => [
        j.id,
        j.kind,
        j.state,
        ch?.tableName ?? '-',
        ch ? `${ch.done}/${ch.pending + ch.leased + ch.done + ch.failed}` : '-',
        ch?.rowsDone ?? '-',
        ch?.failed ?? '-',
        j.updatedAt,
      ]),
    );
    out.push(renderTable(['job', 'kind', 'state', 'table', 'chunks done', 'rows', 'failed', 'updated'], rows));
  }
  const fullCopy = s.fullCopy ? renderFullCopyStatus(s.fullCopy) : [];
  if (fullCopy.length > 0) out.push('', ...fullCopy);
  if (s.workers.length > 0) {
    out.push('', renderTable(['worker', 'command', 'job', 'heartbeat age s'], s.workers.map((w) => [w.id, w.command, w.jobId, w.heartbeatAgeSeconds])));
  }
  if (s.gray) {
    const g = s.gray.tables.map((t) => [t.table, t.mode, t.read, t.write, t.allow, t.deny, t.shimRepairsOpen, t.updatedAt]);
    out.push('', renderTable(['table', 'shim mode', 'gray read', 'gray write', 'allow', 'deny', 'shim repairs open', 'changed'], g));
  }
  if (s.sync) out.push(...renderSyncStatus(s.sync));
  return out.join('\n');
}

/** Waits `ms`; resolves true early if the process is asked to stop (SIGINT/SIGTERM). */
function interrupted(ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const onSignal = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    function done(stop: boolean) {
      clearTimeout(timer);
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      resolve(stop);
    }
    process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  });
}
