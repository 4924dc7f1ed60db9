import type { Command } from 'commander';
import type { SyncResult } from '../../cdc/sync.js';
import { ExitCode, RefusedError } from '../../errors.js';
import { formatRanges, parseRanges } from '../../ranges.js';
import { STOPS_ON_SIGNAL, stopOnSignal } from '../context.js';
import type { Run } from '../main.js';
import { listDeadLetters, skipDeadLetters, type DeadLetterEntry } from '../../cdc/deadletters.js';
import { requireTable } from '../../gray/operations.js';
import { renderTable } from '../render.js';
import { QUIET_TOPICS } from '../../cdc/connect.js';
import { changeContext, parseLimit, withStore } from './gray.js';

export function registerSync(program: Command, run: Run): void {
  const sync = program
    .command('sync')
    .summary('Phase 3: apply change events (CDC through Kafka, or SQL Server CDC directly) to the shards and keep lag near zero')
    .description(
      [
        'Phase 3 of the cutover. With cdc.kafka: joins the consumer group cdc.kafka.group on',
        "cdc.kafka.topic and decodes Debezium's change events. With cdc.mssql (no Kafka): polls SQL",
        "Server's CDC tables of cdc.mssql.capture_instances between LSNs. Either way the changes are",
        'applied to the shards as idempotent upserts and deletes by primary key, per-key order kept, a',
        'shard-key change moves the row, and the position (Kafka offsets, or the LSN per capture',
        'instance) is saved only after the writes it covers are durable. A fresh start begins where',
        '`full` recorded the start position. Events that cannot be decoded or applied go to the',
        'dead_letters table with their reason. Several sync processes in one Kafka group split the',
        'partitions. Direct CDC stops with an error when CDC cleanup has passed its position, or right',
        'before a schema change of legacy that touches the columns it copies.',
        '',
        'Runs until SIGINT/SIGTERM (finishes and commits the in-flight batch, then exits) or, with',
        '--until-caught-up, until every partition (or capture instance) is applied to its end.',
        '',
        'Exit codes: 0 stopped cleanly with no open dead letters; 1 dead letters are open (sync dead-letters lists',
        'them), writes are parked for a shard server that could not take them, or the run was stopped before its',
        'change source answered; 2 bad config or flags, or a full copy of its tables has chunks left; nothing was applied.',
      ].join('\n'),
    )
    .option('--until-caught-up', 'exit once the lag is 0 on every partition')
    .option('--retry-dead-letters', 'first replay the open dead letters (after a fix), in log order')
    .option('--metrics-port <port>', 'serve Prometheus metrics on http://HOST:PORT/metrics (0 = any free port)')
    .option('--metrics-host <host>', 'address for --metrics-port', '127.0.0.1')
    .action(async (opts: { untilCaughtUp?: boolean; retryDeadLetters?: boolean; metricsPort?: string; metricsHost: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { config } = ctx.loadConfig();
        let metricsPort: number | undefined;
        if (opts.metricsPort !== undefined) {
          metricsPort = Number(opts.metricsPort);
          if (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535) throw new RefusedError(`--metrics-port ${opts.metricsPort}: expected a port number`);
        }
        const stop = stopOnSignal(ctx, 'stopping: finishing the in-flight batch (a write to a shard server that stopped answering gives up within 2 x the lock wait)');
        try {
          // Loaded here: kafkajs and the SQL Server driver only for the command that needs them.
          const { runSync } = await import('../../cdc/sync.js');
          const result = await runSync(config, {
            logger: ctx.logger,
            untilCaughtUp: opts.untilCaughtUp === true,
            retryDeadLetters: opts.retryDeadLetters === true,
            ...(metricsPort !== undefined ? { metricsPort, metricsHost: opts.metricsHost } : {}),
            signal: stop.signal,
          });
          const connectorsDown = result.source === 'kafka' && (result.connectorsDown ?? []).length > 0;
          const leftProblems = result.deadLetters.open > 0 || Object.keys(result.parked).length > 0 || !result.started || connectorsDown;
          return ctx.finish(leftProblems ? ExitCode.Problems : ExitCode.Ok, result, renderSync);
        } finally {
          stop.release();
        }
      }, STOPS_ON_SIGNAL),
    );

  sync
    .command('dead-letters')
    .description('list dead letters, newest first: id, where the event came from (topic/partition/offset or LSN), table, why')
    .option('--table <name>', "only this table's (and those naming no table, which the gates count for every table)")
    .option('--all', 'resolved and skipped ones too')
    .option('--limit <n>', 'at most this many (default 50)')
    .action(async (opts: { table?: string; all?: boolean; limit?: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { config } = ctx.loadConfig();
        // A misspelt table would list only the dead letters naming no table: "no dead letters" while some are open.
        if (opts.table !== undefined) requireTable(config, opts.table);
        const limit = opts.limit === undefined ? 50 : parseLimit(opts.limit);
        const entries = await withStore(config, (store) => listDeadLetters(store.pool, { ...(opts.table !== undefined ? { table: opts.table } : {}), all: opts.all === true, limit }));
        return ctx.finish(ExitCode.Ok, { deadLetters: entries }, renderDeadLetters);
      }),
    );

  sync
    .command('skip-dead-letters <ids>')
    .description(
      'mark dead letters (ids and ranges separated by commas: 12,15-40) as skipped: never applied, no longer open, kept with who and why. For an event that can never apply (not a change of a configured table, a TRUNCATE copied again with full); fix and --retry-dead-letters otherwise',
    )
    .option('--reason <text>', 'why (recorded with each; required)')
    .option('--operator <name>', 'who (default $MEMBERMIG_OPERATOR, else $USER)')
    .action(async (idList: string, opts: { reason?: string; operator?: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { config } = ctx.loadConfig();
        const ids = parseDeadLetterIds(idList);
        const { operator, reason } = changeContext(opts);
        if (!reason?.trim()) throw new RefusedError('skip-dead-letters needs --reason "…": it is recorded with each dead letter');
        const skipped = await withStore(config, (store) => skipDeadLetters(store.pool, ids, { operator, reason }));
        return ctx.finish(ExitCode.Ok, { skipped, ids, operator, reason }, (r) => `skipped ${r.skipped} dead letter${r.skipped === 1 ? '' : 's'} (${formatRanges(r.ids)}), by ${r.operator}: ${r.reason}`);
      }),
    );
}

/** '12,15-40' → [12, 15, 16, …, 40]; at most 100,000 ids in one skip (one statement, one transaction). */
export function parseDeadLetterIds(text: string): number[] {
  return parseRanges(text, { what: 'skip-dead-letters', noun: 'a dead letter id (see sync dead-letters)', min: 1, max: Number.MAX_SAFE_INTEGER, maxCount: 100_000 });
}

export function renderDeadLetters(r: { deadLetters: DeadLetterEntry[] }): string {
  if (r.deadLetters.length === 0) return 'no dead letters';
  const where = (d: DeadLetterEntry) => (d.partition === null ? `${d.source} @ ${d.offset}` : `${d.source}[${d.partition}] @ ${d.offset}`);
  const state = (d: DeadLetterEntry) => (d.skipped ? `skipped by ${d.skipped.by}: ${d.skipped.reason}` : d.resolvedAt ? 'resolved' : 'open');
  return renderTable(
    ['id', 'event', 'table', 'since', 'state', 'reason'],
    r.deadLetters.map((d) => [d.id, where(d), d.table ?? '-', d.createdAt.replace('T', ' ').slice(0, 19), state(d), d.reason.length > 160 ? `${d.reason.slice(0, 157)}...` : d.reason]),
  );
}

export function renderSync(r: SyncResult): string {
  const from = r.source === 'kafka' ? `${r.topics.join(', ')} as group ${r.group}` : `SQL Server CDC (${r.instances.map((i) => i.instance).join(', ')})`;
  const lines = [
    `sync of ${from}: ${r.stoppedBy === 'caught-up' ? 'caught up' : r.started ? 'stopped' : 'stopped before the change source answered (nothing was read)'} after ${r.elapsedSeconds.toFixed(1)} s`,
    `events applied ${r.eventsApplied}${r.source === 'kafka' ? `, tombstones skipped ${r.tombstones}` : ''}, dead-lettered now ${r.deadLettered}`,
  ];
  if (r.retried) lines.push(`dead letters retried: ${r.retried.resolved} resolved, ${r.retried.stillFailing} still failing`);
  if (r.source === 'kafka' && r.partitions.length > 0) {
    lines.push('', renderTable(['topic', 'partition', 'events', 'next offset'], r.partitions.map((p) => [p.topic, p.partition, p.events, p.nextOffset])));
  }
  if (r.source === 'mssql' && r.instances.length > 0) {
    lines.push('', renderTable(['capture instance', 'table', 'events', 'dead-lettered', 'position (lsn[:seqval])'], r.instances.map((i) => [i.instance, i.table, i.events, i.deadLettered, i.position ?? '-'])));
  }
  lines.push('', r.deadLetters.open > 0 ? `${r.deadLetters.open} dead letters are open: sync dead-letters lists them; fix, then sync --retry-dead-letters (sync skip-dead-letters for one that can never apply)` : 'no open dead letters');
  for (const [server, writes] of Object.entries(r.parked)) {
    lines.push(`${writes} writes parked for shard server ${server}, which could not take them: they are replayed in order when it answers (a running sync does it)`);
  }
  for (const [table, kept] of Object.entries(r.deletesKept)) {
    lines.push(`${kept} deletes of ${table} kept a row the shard holds with a newer updated_at (keys in the log): if legacy has no such row, verify reports it and verify --repair removes it`);
  }
  if (r.source === 'kafka') for (const down of r.connectorsDown ?? []) lines.push(`${down}: ${QUIET_TOPICS}`);
  return lines.join('\n');
}
