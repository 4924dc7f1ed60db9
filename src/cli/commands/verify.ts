import type { Command } from 'commander';
import { ExitCode, RefusedError } from '../../errors.js';
import { parseRanges } from '../../ranges.js';
import { parsePercent } from '../../gray/percent.js';
import { parseMetricsPort } from '../../metrics/port.js';
import { STOPS_ON_SIGNAL, stopOnSignal } from '../context.js';
import { runVerify, type VerifyOptions, type VerifyResult } from '../../verify/index.js';
import type { Run } from '../main.js';
import { renderTable } from '../render.js';

interface VerifyFlags {
  tables?: string;
  shards?: string;
  sample?: string;
  since?: string;
  recheckAfter?: string;
  repair?: boolean;
  dryRun?: boolean;
  watch?: string;
  workers?: string;
  restart?: boolean;
  metricsPort?: string;
  metricsHost: string;
}

export function registerVerify(program: Command, run: Run): void {
  program
    .command('verify')
    .summary('Phase 4: compare legacy and shards by chunk checksums, find the differing rows, optionally repair them')
    .description(
      [
        'Phase 4. For each primary-key chunk of each table, compares the legacy side\'s row count and checksum',
        '(the sum of canonical row hashes, computed inside the databases) with the sum over every shard, and',
        'checks that no shard holds a row the shard map routes elsewhere. A mismatched chunk is split until the',
        'differing rows are found: missing in target, extra in target, different (with the columns), or on the',
        'wrong shard. A mismatch is re-checked after --recheck-after seconds plus the current sync lag, and once sync',
        'has applied what the change topics held when it was seen (up to 60 s); only a',
        'persistent one is reported. Runs are recorded in verify_runs (the gray gates read them) and differences',
        'in verify_diffs. Several verifiers started with the same flags share the chunks through leases.',
        '',
        'Exit codes: 0 clean (or every difference repaired and re-verified); 1 differences persist or chunks',
        'failed; 2 bad flags or config (nothing was checked).',
      ].join('\n'),
    )
    .option('--tables <names>', 'comma-separated logical table names (default: all configured tables)')
    .option('--shards <list>', 'only these logical shards, e.g. 0-15,32 (legacy rows routed to them, and those shards)')
    .option('--sample <percent>', 'check about this percentage of the rows, in chunks chosen at random and weighed by their estimated rows (quick gates on huge tables; the result\'s row counts say how many were compared)')
    .option('--since <time>', 'only rows changed at or after this time (UTC; ISO 8601, or a duration ago like 30m, 2h, 1d); needs tables.NAME.updated_at')
    .option('--recheck-after <seconds>', 'wait before re-checking a mismatch (default verify.recheck_after_seconds), plus the sync lag')
    .option('--repair', 'rewrite differing rows from the legacy side, delete extras and wrong-shard copies, re-verify them; also drains repair_queue')
    .option('--dry-run', 'with --repair: show what would be repaired, change nothing')
    .option('--watch <interval>', 'continuous mode: a new pass this long after the last (seconds, or 30s, 5m, 1h) until SIGINT/SIGTERM')
    .option('--workers <n>', 'chunks checked at once by this process (default verify.workers)')
    .option('--restart', 'abandon a running or killed verify of the same scope instead of joining it, and check every chunk again')
    .option('--metrics-port <port>', 'serve Prometheus metrics on http://HOST:PORT/metrics while verifying (0 = any free port)')
    .option('--metrics-host <host>', 'address for --metrics-port', '127.0.0.1')
    .action(async (flags: VerifyFlags, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { config } = ctx.loadConfig();
        const metricsPort = flags.metricsPort === undefined ? undefined : parseMetricsPort(flags.metricsPort);
        // prom-client (and what it loads) only when metrics are asked for: a fifth of the start-up otherwise.
        const watchSeconds = flags.watch === undefined ? undefined : parseDuration(flags.watch, '--watch');
        // 0 would start pass after pass with no pause, each one a job and a run in the control store.
        if (watchSeconds === 0) throw new RefusedError('--watch: expected an interval above 0, got "0"');
        // After the flags are checked: a refused flag must not leave the metrics server listening.
        const metrics = metricsPort === undefined ? undefined : new (await import('../../metrics/index.js')).VerifyMetrics(config);
        if (metrics) ctx.logger.info({ port: await metrics.listen(metricsPort!, flags.metricsHost) }, 'metrics at /metrics');
        const stop = stopOnSignal(ctx, 'stopping: finishing the chunks in hand; the rest is left for the next run');
        let printed: ExitCode | undefined;
        try {
          const result = await runVerify(config, {
            logger: ctx.logger,
            ...(flags.tables !== undefined ? { tables: tableList(flags.tables) } : {}),
            ...(flags.shards ? { shards: parseShardList(flags.shards, config.shards.count) } : {}),
            ...(flags.sample ? { samplePercent: parseSamplePercent(flags.sample) } : {}),
            ...(flags.since ? sinceOption(flags.since) : {}),
            ...(flags.recheckAfter ? { recheckAfterSeconds: parseNumber(flags.recheckAfter, '--recheck-after') } : {}),
            ...(flags.workers ? { workers: parsePositiveInteger(flags.workers, '--workers') } : {}),
            repair: flags.repair === true,
            dryRun: flags.dryRun === true,
            restart: flags.restart === true,
            ...(watchSeconds !== undefined ? { watchSeconds } : {}),
            signal: stop.signal,
            onPass: (r) => {
              metrics?.update(r);
              // --watch prints each pass as it ends (one JSON document per line with --json), as status --watch does.
              if (watchSeconds !== undefined) printed = ctx.finish(exitCodeOf(r), r, renderVerify, true);
            },
          });
          // The last whole pass was printed already; a stop during the first pass prints what it has.
          return printed ?? ctx.finish(exitCodeOf(result), result, renderVerify);
        } finally {
          stop.release();
          await metrics?.close();
        }
      }, STOPS_ON_SIGNAL),
    );
}

/**
 * repair_queue entries left open (held, malformed, still differing, waiting for parked writes) are
 * problems left even when the rows this run compared are clean (a --shards, --sample or --since scope).
 */
function exitCodeOf(r: VerifyResult): ExitCode {
  return r.state !== 'clean' || r.repairQueue.some((q) => q.left > 0) ? ExitCode.Problems : ExitCode.Ok;
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** --tables: at least one name; an empty list would verify nothing and report it clean. */
function tableList(text: string): string[] {
  const tables = splitList(text);
  if (tables.length === 0) throw new RefusedError(`--tables: expected comma-separated table names, got "${text}"`);
  return tables;
}

/** "0-3,7" → [0, 1, 2, 3, 7]. */
export function parseShardList(text: string, count: number): number[] {
  return parseRanges(text, { what: '--shards', noun: 'a shard number', min: 0, max: count - 1 });
}

function parsePositiveInteger(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new RefusedError(`${flag}: expected a positive integer, got "${text}"`);
  return n;
}

/** "5%" or "5" (as README and --help write it) → 5, read as gray's percentages are; one message for every refusal, 0 included. */
function parseSamplePercent(text: string): number {
  // One message for every bad value, naming the steps too: 0.005 is inside (0, 100] but not a step.
  const refused = () => new RefusedError(`--sample: expected a percentage from 0.01% to 100% in steps of 0.01%, got ${text}`);
  let basisPoints: number;
  try {
    basisPoints = parsePercent(text, '--sample');
  } catch {
    throw refused();
  }
  if (basisPoints === 0) throw refused();
  return basisPoints / 100;
}

function parseNumber(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new RefusedError(`${flag}: expected a non-negative number, got "${text}"`);
  return n;
}

/** Seconds from "90", "90s", "5m", "2h", "1d". */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new RefusedError(`${flag}: expected seconds or a duration like 30s, 5m, 1h, got "${text}"`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
}

/**
 * --since as runVerify takes it: a duration ago is counted back from the control server's clock
 * when the store is open (this host's, minutes fast, put "30m ago" in the rows' future: nothing
 * was compared and the run was clean); a time is taken as given.
 */
export function sinceOption(text: string): Pick<VerifyOptions, 'since' | 'sinceAgoSeconds'> {
  return DURATION.test(text.trim()) ? { sinceAgoSeconds: parseDuration(text, '--since') } : { since: parseSince(text) };
}

const DURATION = /^\d+(?:\.\d+)?\s*[smhd]$/;

/** A time in the shards' literal form (UTC, microseconds), from an ISO time. */
export function parseSince(text: string): string {
  // A UTC wall-clock time keeps its microseconds exactly (a JS Date would cut them to milliseconds).
  const plain = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?Z?$/.exec(text.trim());
  if (plain) {
    // A JS Date rolls 02-30 over into March (and the shards' cast makes it NULL): it must come back as written.
    const at = new Date(`${plain[1]}T${plain[2]}Z`);
    if (Number.isNaN(at.getTime()) || !at.toISOString().startsWith(`${plain[1]}T${plain[2]}`)) throw new RefusedError(`--since: "${text}" is not a date and time that exists`);
    return `${plain[1]} ${plain[2]}.${(plain[3] ?? '').padEnd(6, '0')}`;
  }
  const at = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text.replace(' ', 'T')}Z`);
  if (Number.isNaN(at.getTime())) throw new RefusedError(`--since: "${text}" is not a time (use ISO 8601 such as 2026-11-27T10:00:00Z, or a duration ago like 2h)`);
  return at.toISOString().replace('T', ' ').replace('Z', '').padEnd(26, '0').replace(/\.(\d{3})0*$/, '.$1000');
}

export function renderVerify(r: VerifyResult): string {
  const out: string[] = [];
  out.push(
    renderTable(
      ['table', 'state', 'chunks', 'legacy rows', 'shard rows', 'differences', 'repaired', 'seconds'],
      // A table's differences are counted when its run ends: a stopped one has no count yet, only what it found so far.
      // A stopped pass leaves its tables' runs open ('running' in the control store) for the next one to finish.
      r.tables.map((t) => [t.table, t.state === 'running' && r.state === 'stopped' ? 'stopped' : t.state, `${t.chunksChecked}/${t.chunksTotal}`, t.rowsSource, t.rowsTarget, t.state === 'running' ? '-' : t.differences, t.repaired, t.seconds?.toFixed(1)]),
    ),
  );
  // Clean with nothing compared is most often a scope that matched nothing (a --since in the future).
  for (const t of r.tables.filter((t) => t.state === 'clean' && t.rowsSource === 0 && t.rowsTarget === 0)) {
    const scope = Object.entries(t.scope).filter(([k, v]) => ['shards', 'sample', 'since'].includes(k) && v !== null && v !== undefined && v !== 'all');
    out.push('', `${t.table}: no row was compared${scope.length > 0 ? ` (${scope.map(([k, v]) => `${k} ${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ')} matched none)` : ' (the table is empty on both sides)'}`);
  }
  if (r.joined) out.push('', `joined verify job ${r.jobId}, which an earlier process started: its counts, seconds and failures include that process's work (--restart checks everything anew)`);
  if (r.differences.length > 0) {
    out.push('', r.state === 'stopped' ? `differences found before the stop (first ${r.differences.length}; the rest of the run decides):` : `first ${r.differences.length} differences:`);
    out.push(
      renderTable(
        ['table', 'kind', 'shard', 'key', 'columns / reason', 'repair'],
        r.differences.map((d) => [d.table, d.kind, d.shard, d.key.join(', '), d.columns?.join(', ') ?? d.reason ?? '', d.repairAction ?? '']),
      ),
    );
  }
  if (r.plannedRepairs.length > 0) {
    out.push('', 'dry run: --repair would do:');
    out.push(renderTable(['table', 'kind', 'shard', 'key', 'action'], r.plannedRepairs.map((p) => [p.table, p.kind, p.shard, p.key.join(', '), p.action])));
  }
  for (const q of r.repairQueue) {
    if (q.entries === 0) continue;
    out.push('', `repair_queue ${q.table}: ${q.entries} entries, ${q.resolved} resolved, ${q.left} left`);
    if (q.legacyBehind > 0) out.push(`  ${q.legacyBehind} of them: legacy is behind MySQL (a shim write to legacy failed); held, never re-copied from legacy`);
    if (q.unrepresentable > 0) out.push(`  ${q.unrepresentable} of them: the legacy row holds a value the target cannot hold; left as they are`);
    if (q.malformed > 0) out.push(`  ${q.malformed} of them: the pk does not name the table's key; left open (${q.problems.join('; ')})`);
  }
  for (const f of r.failures) out.push('', `${f.table}: ${f.chunks} chunk(s) failed: ${f.error}`);
  const ending = { clean: 'clean', failed: 'some chunks failed: run again to finish them', stopped: 'stopped before every chunk was checked: run verify again to go on', differences: 'differences persist' };
  out.push('', ending[r.state]);
  return out.join('\n');
}
