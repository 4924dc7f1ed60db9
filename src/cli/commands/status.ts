import type { Command } from 'commander';
import { ExitCode, RefusedError } from '../../errors.js';
import { collectStatus, type Status } from '../../store/status.js';
import type { TableStatus } from '../../store/status-tables.js';
import type { SyncStatus } from '../../cdc/status.js';
import { SYNC_SILENT_MS } from '../../cdc/offsets.js';
import { QUIET_TOPICS } from '../../cdc/connect.js';
import type { Run } from '../main.js';
import { renderTable } from '../render.js';
import type { FullCopyStatus } from '../../copy/status.js';
import type { ReplicaLag } from '../../target/replica-lag.js';

export function registerStatus(program: Command, run: Run): void {
  program
    .command('status')
    .summary('Any phase: one view per table of copy, sync lag, verify, shim, gray, dead letters, repairs, workers')
    .description(
      [
        'One view of every phase, first one line per table: full-copy progress, sync lag (events and seconds),',
        'the last verify (state, differences, when, scope), shim mode, gray read/write percentages, open dead',
        'letters, repair queue and leased chunks; then the servers, sync offsets per partition, active workers',
        'with their leases, gray lists, full-copy jobs and recent jobs. With cdc.kafka, the change topics\' ends',
        'come from the broker (3 s at most), and a consumer group that retention has passed is named. --json gives',
        'the same (the per-table lines are result.perTable) for CI gates and dashboards.',
        '',
        'Exit codes: 0 when nothing needs attention; 1 when anything does (listed under "problems:", result.problems',
        'with --json): the control store unreachable or not migrated, a connector not running, open dead letters,',
        'parked writes, sync lag over gray.gates.max_sync_lag_seconds, a missing topic or a retention gap, a last',
        'verify with differences or failed, open repairs, a full copy with failed chunks, rejected values or stopped',
        'with chunks left, or a failing gate for a table with members on MySQL; 2 bad usage or config.',
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
          const healthy = status.problems.length === 0;
          if (interval > 0 && !ctx.json && process.stdout.isTTY) ctx.io.stdout.write('\x1b[2J\x1b[H');
          exitCode = ctx.finish(healthy ? ExitCode.Ok : ExitCode.Problems, status, renderStatus, interval > 0);
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
  else if ((c.problems ?? []).length > 0) out.push(`control store ${c.database}: cannot be used by this membermig: ${c.problems!.join('; ')}`);
  else out.push(`control store ${c.database}: schema ${c.appliedVersion ?? 'none'} of ${c.latestVersion}${c.appliedVersion === c.latestVersion ? '' : ' (run membermig init)'}`);
  // Kafka could not be asked: events behind are sync's last report, not now.
  const asOfReport = s.sync?.kafka?.reachable === false ? ' (last report)' : '';
  out.push(`shard map: ${s.shards.count} shards (${s.shards.function}) in databases ${s.shards.database} on ${s.servers.length} servers`, '');

  out.push(
    renderTable(
      ['table', 'full copy', 'sync lag', 'last verify', 'shim mode', 'gray read/write', 'dead letters', 'repair queue', 'leased chunks'],
      s.perTable.map((t) => [
        t.table,
        t.fullCopy ? fullCopyText(t.fullCopy) : 'not started',
        t.sync ? `${t.sync.lastLsn ? `at LSN ${t.sync.lastLsn}` : `${t.sync.lagEvents ?? '?'} events${asOfReport}`}, ${t.sync.lagSeconds === null ? '?' : t.sync.lagSeconds.toFixed(1)} s` : 'no sync yet',
        t.lastVerify ? lastVerifyText(t.lastVerify) : 'never',
        t.shimMode,
        t.grayRead === null ? null : `${t.grayRead} / ${t.grayWrite}${t.grayAllowed > 0 ? ` +${t.grayAllowed} allowed` : ''}${t.grayDenied > 0 ? ` -${t.grayDenied} denied` : ''}`,
        t.deadLettersOpen,
        t.repairQueueOpen,
        t.leasedChunks,
      ]),
    ),
  );
  const unknownDeadLetters = s.sync?.deadLetters.openByTable.filter((d) => d.table === null).reduce((a, d) => a + d.count, 0) ?? 0;
  if (unknownDeadLetters > 0) out.push(`${unknownDeadLetters} open dead letters could not be told to a table (undecodable events)`);

  out.push('', renderTable(['server', 'dc', 'shards', 'replicas', 'replica lag'], s.servers.map((v) => [v.name, v.dc, v.shards, v.replicas, replicaLagText(v.replicaLag)])));
  if (s.sync) out.push(...renderSyncStatus(s.sync));
  if (s.workers.length > 0 || (s.leases ?? []).length > 0) out.push('', renderWorkers(s));
  const details = (s.gray?.tables ?? []).filter((t) => t.allow > 0 || t.deny > 0 || t.shimRepairsOpen > 0 || t.updatedAt !== null);
  if (details.length > 0) {
    out.push('', renderTable(['table', 'gray allowlist', 'denylist', 'shim repairs open', 'settings changed'], details.map((t) => [t.table, t.allow, t.deny, t.shimRepairsOpen, t.updatedAt])));
  }
  const fullCopy = s.fullCopy ? renderFullCopyStatus(s.fullCopy) : [];
  if (fullCopy.length > 0) out.push('', ...fullCopy);
  if (s.jobs.length > 0) {
    const rows = s.jobs.flatMap((j) =>
      (j.chunks.length > 0 ? j.chunks : [null]).map((ch) => [
        j.id,
        j.kind,
        j.stopped ? `${j.state}, stopped` : j.state,
        ch?.tableName ?? '-',
        ch ? `${ch.done}/${ch.pending + ch.leased + ch.done + ch.failed}` : '-',
        ch?.rowsDone ?? '-',
        ch?.failed ?? '-',
        j.updatedAt,
      ]),
    );
    out.push('', 'recent jobs:', renderTable(['job', 'kind', 'state', 'table', 'chunks done', 'rows', 'failed', 'updated'], rows));
  }
  // Last, where a terminal leaves it in view: why the exit code is 1.
  if (s.problems.length > 0) out.push('', `problems (exit 1):`, ...s.problems.map((p) => `  - ${p}`));
  return out.join('\n');
}

/** e.g. "clean, 0 differences, 5 s ago (all rows)" or "2 differences (1 repaired), …": the state is not said twice. */
function lastVerifyText(v: NonNullable<TableStatus['lastVerify']>): string {
  const count = `${v.differences} ${v.differences === 1 ? 'difference' : 'differences'}${v.repaired ? ` (${v.repaired} repaired)` : ''}`;
  const stale = v.copiedSince === null ? '' : `; full copy job ${v.copiedSince} began after it: not verified since`;
  return `${v.state === 'differences' ? count : `${v.state}, ${count}`}, ${ago(v.ageSeconds)} (${v.scope})${stale}`;
}

/** Active workers with the chunk leases they hold (a lease without a live worker shows as its owner id). */
function renderWorkers(s: Status): string {
  const leases = s.leases ?? [];
  const rows = s.workers.map((w) => {
    const held = leases.filter((l) => l.worker === w.id);
    return [w.id, w.command, w.jobId, w.heartbeatAgeSeconds, held.reduce((a, l) => a + l.chunks, 0), held.length > 0 ? Math.min(...held.map((l) => l.expiresInSeconds)) : null];
  });
  for (const l of leases) if (!s.workers.some((w) => w.id === l.worker)) rows.push([l.worker, '(gone)', l.jobId, null, l.chunks, l.expiresInSeconds]);
  return renderTable(['worker', 'command', 'job', 'heartbeat age s', 'leased chunks', 'lease expires in s'], rows);
}

function ago(seconds: number): string {
  if (seconds < 120) return `${Math.max(0, seconds)} s ago`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
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

/** A table's full copy in a few words; while its job is still planning, the chunk total is not known yet. */
function fullCopyText(f: NonNullable<TableStatus['fullCopy']>): string {
  const planning = f.state === 'planning';
  const state = f.stopped ? `stopped${planning ? ' while planning' : ''}` : f.state;
  return `${state} ${f.chunksDone}/${f.chunksTotal}${planning ? '+' : ''} chunks, ${f.rows} rows${f.chunksFailed ? `, ${f.chunksFailed} failed` : ''}`;
}

/** Lines for people: lag per partition or capture instance, and open dead letters. */
function renderSyncStatus(s: SyncStatus): string[] {
  const out: string[] = [];
  if (s.partitions.length > 0) {
    out.push(
      '',
      renderTable(
        ['sync group', 'topic', 'partition', 'next offset', 'lag events', 'lag s', 'applied', 'updated'],
        s.partitions.map((p) => [p.group, p.topic, p.partition, p.nextOffset, p.lagMessages, p.lagSeconds === null ? null : p.lagSeconds.toFixed(1), p.appliedEvents, p.updatedAt]),
      ),
    );
  }
  if (s.captureInstances.length > 0) {
    out.push(
      '',
      renderTable(
        ['capture instance', 'table', 'last lsn', 'inside transaction at seqval', 'lag s', 'applied', 'updated'],
        s.captureInstances.map((i) => [i.instance, i.table, i.lastLsn, i.lastSeqval ?? '-', i.lagSeconds, i.eventsApplied, i.updatedAt]),
      ),
    );
  }
  const lastReport = s.partitions.length > 0 ? Math.min(...s.partitions.map((p) => p.reportedSecondsAgo)) : null;
  if (lastReport !== null && lastReport * 1000 > SYNC_SILENT_MS) {
    const events = s.kafka?.reachable ? "lag events are the broker's now" : 'lag events are as of its last report';
    out.push('', `no sync has reported for ${lastReport.toFixed(0)} s (is one running?): ${events}, lag seconds count from it`);
  }
  if (s.kafka && !s.kafka.reachable) out.push('', `could not ask ${s.kafka.error}: lag events are as of sync's last report`);
  for (const topic of s.kafka?.reachable ? s.kafka.missingTopics : []) {
    out.push('', `topic ${topic} does not exist on the broker (cdc.kafka.topic): sync refuses to start until it does (is the connector running, is the name right?)`);
  }
  for (const g of s.kafka?.reachable ? s.kafka.retentionGaps : []) {
    out.push(
      '',
      `${g.topic}[${g.partition}]: consumer group ${s.kafka!.group} is at offset ${g.nextOffset}, but the broker keeps from ${g.oldestKept}: the changes in between were deleted (retention): copy the tables again (membermig full --restart), unless that was done since; sync then goes on from the offsets that copy recorded`,
    );
  }
  for (const c of s.connectors ?? []) {
    out.push('', c.problem ? `${c.problem}: ${QUIET_TOPICS}` : `connector ${c.name}: RUNNING, ${c.tasks.length} task${c.tasks.length === 1 ? '' : 's'} running`);
  }
  const o = s.lastConnectorOutage;
  const when = o?.endedAt ? `was last not running from ${o.beganAt} to ${o.endedAt}` : `was seen not running at ${o?.beganAt} and not seen running since`;
  if (o) out.push('', `connector ${o.connector} ${when} (${o.problem}): the gray gate wants a clean verify begun after that`);
  for (const p of s.parked) out.push('', `shard server ${p.server}: ${p.count} writes parked until it is reachable again`);
  if (s.deadLetters.open > 0 || s.deadLetters.resolved > 0) {
    out.push('', `dead letters: ${s.deadLetters.open} open, ${s.deadLetters.resolved} resolved` + (s.deadLetters.open > 0 ? ' (membermig sync dead-letters lists them; fix, then sync --retry-dead-letters)' : ''));
  }
  return out;
}

function renderFullCopyStatus(s: FullCopyStatus): string[] {
  if (s.jobs.length === 0) return [];
  return [
    'full copy:',
    ...s.jobs.map(
      (j) =>
        `  job ${j.id} (${j.job}): ${j.stopped ? `${j.state} but stopped (no process works on it; membermig full goes on)` : j.state}, ${j.chunks - j.chunksLeft}/${j.chunks} chunks done, ${j.rows} rows, ${j.rejectedValues} rejected values` +
        j.startPositions.map((p) => `; CDC start ${p.kind} ${JSON.stringify(p.position)}`).join(''),
    ),
  ];
}

/** The worst of a server's replicas: its lag, or why it is not known. */
function replicaLagText(lags: ReplicaLag[] | undefined): string | null {
  if (!lags || lags.length === 0) return null;
  const unknown = lags.find((l) => l.seconds === null);
  if (unknown) return `? (${unknown.replica}: ${unknown.why})`;
  return `${Math.max(...lags.map((l) => l.seconds!))} s`;
}
