import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { ExitCode } from '../../errors.js';
import { createLogger } from '../../log.js';
import type { DemoStep, runDemo } from '../../sandbox/demo.js';
import { DEFAULT_SANDBOX_DIR, LEGACY_DATABASE, sandboxDown, sandboxStatus, sandboxUp, type SandboxState } from '../../sandbox/index.js';
import { STOPS_ON_SIGNAL, stopOnSignal, type CommandContext } from '../context.js';
import type { Run } from '../main.js';
import { renderJson, renderTable } from '../render.js';
import { renderFull } from './full.js';
import { renderGrayChange } from './gray.js';
import { renderInit } from './init.js';
import { renderShimChange } from './shim.js';
import { renderStatus } from './status.js';
import { renderSync } from './sync.js';
import { renderVerify } from './verify.js';

export function registerSandbox(program: Command, run: Run): void {
  const sandbox = program
    .command('sandbox')
    .summary('A local sandbox (legacy MariaDB, control store, two shard servers, Kafka + Debezium) and the demo')
    .description(
      [
        'Starts private MariaDB servers on free ports of 127.0.0.1 with their data in one folder',
        `(default ${DEFAULT_SANDBOX_DIR}/): the legacy stand-in (binlog on), the control store and two shard`,
        'servers, plus a Kafka broker and Kafka Connect with Debezium capturing the legacy database',
        '(fetched with Maven into ~/.cache/membermig on first use), and writes a ready membermig.yaml there.',
        'Reuses what is running; tears down only what it started (by PID). Needs nothing but `npm ci` on a',
        'machine with mariadbd, java and mvn (scripts/ensure-tools.sh installs them).',
      ].join('\n'),
    );
  const dirOption = ['--dir <folder>', 'sandbox folder', DEFAULT_SANDBOX_DIR] as const;

  sandbox
    .command('up')
    .description('start (or reuse) the sandbox servers and write <dir>/membermig.yaml')
    .option(...dirOption)
    .option('--shards <n>', 'logical shards in the written config (1 to 65536)', positiveInt('--shards', 65_536), 16)
    .option('--no-kafka', 'skip Kafka and Kafka Connect with Debezium (no cdc section in the config)')
    .action(async (opts: { dir: string; shards: number; kafka: boolean }, cmd: Command) =>
      run(
        cmd,
        async (ctx) => {
          // A Ctrl-C while servers start: they finish starting, then what this run started is stopped (none is left behind).
          const stop = stopOnSignal(ctx, 'stopping: the servers being started are stopped once they are up');
          try {
            const state = await sandboxUp({ dir: opts.dir, shardCount: opts.shards, kafka: opts.kafka, logger: ctx.logger, signal: stop.signal });
            return ctx.finish(ExitCode.Ok, state, renderStateAndNext);
          } finally {
            stop.release();
          }
        },
        STOPS_ON_SIGNAL,
      ),
    );

  sandbox
    .command('status')
    .description('show the sandbox servers and whether they run')
    .option(...dirOption)
    .action(async (opts: { dir: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const state = await sandboxStatus(opts.dir);
        if (!state) return ctx.finish(ExitCode.Problems, null, () => `no sandbox in ${opts.dir} (run: membermig sandbox up)`);
        const allUp = state.servers.every((s) => s.running) && state.kafka?.running !== false;
        // No next steps: after a demo the legacy table is there, and status cannot tell (it asks no server).
        return ctx.finish(allUp ? ExitCode.Ok : ExitCode.Problems, state, renderState);
      }),
    );

  sandbox
    .command('down')
    .description('stop the servers the sandbox started; --purge also deletes its folder')
    .option(...dirOption)
    .option('--purge', 'delete the sandbox folder and its data')
    .action(async (opts: { dir: string; purge?: boolean }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const r = await sandboxDown(opts.dir, opts.purge === true);
        return ctx.finish(ExitCode.Ok, r, (x) => `stopped: ${x.stopped.join(', ') || 'nothing was running'}${x.purged ? '; folder deleted' : ''}`);
      }),
    );

  sandbox
    .command('demo')
    .description(
      [
        'Brings the sandbox up, seeds members into the legacy database, then runs the whole cutover runbook:',
        'init -> full (while a writer keeps changing members) -> sync --until-caught-up -> verify -> shim',
        'dual_legacy_primary -> gray 1% -> 10% -> 50% -> 100% (a verify before each raise; the gates are real)',
        '-> the writer stops, sync catches up -> final verify -> status. Each step prints what it did and how',
        'long it took. A rerun starts clean (control store, shard databases and consumer group are reset).',
        '',
        'Exit codes: 0 every step passed and the final verify is clean; 1 a step failed (named on stdout).',
      ].join('\n'),
    )
    .option(...dirOption)
    .option('--rows <n>', 'members to seed', positiveInt('--rows'), 200_000)
    .option('--writes-per-sec <n>', 'changes per second the writer makes while the cutover runs', positiveInt('--writes-per-sec'), 40)
    .action(async (opts: { dir: string; rows: number; writesPerSec: number }, cmd: Command) =>
      run(cmd, async (ctx) => {
        // stdout tells the story; the logs on stderr say only what went wrong, unless --log-level asks for more.
        const logger = cmd.getOptionValueSourceWithGlobals('logLevel') === 'default' ? createLogger('warn', ctx.io.stderr) : ctx.logger;
        ctx.io.stderr.write(`starting the sandbox in ${opts.dir} (the first run fetches Kafka and Debezium with Maven: about a minute)\n`);
        const up = await sandboxUp({ dir: opts.dir, logger });
        if (!ctx.json) ctx.io.stdout.write(`sandbox: ${opts.dir} (config ${up.configPath})\n${renderState(up)}\n\n`);
        const { config } = loadConfig(up.configPath);
        let n = 0;
        const { runDemo } = await import('../../sandbox/demo.js');
        const result = await runDemo(config, {
          rows: opts.rows,
          writesPerSecond: opts.writesPerSec,
          fresh: true,
          logger,
          onStep: (step) => {
            if (!ctx.json) ctx.io.stdout.write(renderStep(++n, step) + '\n\n');
          },
        });
        const exitCode = result.ok ? ExitCode.Ok : ExitCode.Problems;
        if (ctx.json) {
          ctx.io.stdout.write(renderJson({ command: ctx.command, ok: result.ok, exitCode, result }) + '\n');
          return exitCode;
        }
        return finishDemo(ctx, exitCode, result, up.configPath, opts.dir);
      }),
    );
}

/** A flag's positive integer (1_000 allowed), up to `max`: parsed by commander, so a bad one is refused before anything starts. */
function positiveInt(flag: string, max = Number.MAX_SAFE_INTEGER) {
  return (v: string) => {
    const n = Number(v.replace(/_/g, ''));
    if (!Number.isInteger(n) || n <= 0 || n > max) throw new InvalidArgumentError(`${flag} expects a positive integer${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ''}`);
    return n;
  };
}

function finishDemo(ctx: CommandContext, exitCode: ExitCode, r: Awaited<ReturnType<typeof runDemo>>, configPath: string, dir: string): ExitCode {
  const failed = r.steps.find((s) => !s.ok);
  const line = failed
    ? `demo FAILED at "${failed.title}" after ${r.seconds.toFixed(1)} s${failed.error ? `: ${failed.error}` : ''}`
    : `demo done: ${r.rows} members moved to ${r.status?.shards.count ?? '?'} shards while they kept changing, verified clean, gray at 100%, in ${r.seconds.toFixed(1)} s`;
  if (failed && r.status) ctx.io.stdout.write(`== where everything stands  [membermig status]\n${renderStatus(r.status)}\n\n`);
  ctx.io.stdout.write(
    [
      line,
      '',
      'The sandbox keeps running. Try (from the repository; or `membermig` when installed):',
      `  node bin/membermig status --config ${configPath}`,
      `  node bin/membermig gray rollback member --config ${configPath} --reason "try a rollback"`,
      `  node bin/membermig sandbox down --dir ${dir}    (add --purge to delete its data)`,
    ].join('\n') + '\n',
  );
  return exitCode;
}

/** One step as its command prints it, under a header with the command and its time. */
export function renderStep(n: number, step: DemoStep): string {
  const header = `== ${n}. ${step.title}  [${step.command}]  ${step.seconds.toFixed(1)} s${step.ok ? '' : '  FAILED'}`;
  return `${header}\n${renderStepBody(step)}`;
}

function renderStepBody(step: DemoStep): string {
  switch (step.kind) {
    case 'seed':
      return `${step.result.rows} members loaded into ${step.result.table} (outside the binlog: rows from before capture began are full's job)`;
    case 'init':
      return renderInit(step.result);
    case 'capture':
      return `${step.result.messagesNow - step.result.messagesBefore} change events in ${step.result.topics.join(', ')} so far: sync will see the changes full cannot`;
    case 'full': {
      const w = step.result.writer;
      return `${renderFull(step.result)}\nmeanwhile on the legacy side: ${describeWriter(w)}`;
    }
    case 'sync':
      return renderSync(step.result);
    case 'verify':
      return renderVerify(step.result);
    case 'shim':
      return renderShimChange(step.result);
    case 'gray':
      return renderGrayChange([step.result]);
    case 'writer':
      return `the writer stopped after ${describeWriter(step.result)}`;
    case 'status':
      return renderStatus(step.result);
    case 'failed':
      return `error: ${step.error}`;
  }
}

function describeWriter(w: { changes: number; inserts: number; updates: number; keyChanges: number; deletes: number; errors: number }): string {
  return `${w.changes} changes: ${w.inserts} inserts, ${w.updates} updates, ${w.keyChanges} shard-key changes (member_id moved), ${w.deletes} deletes, ${w.errors} errors`;
}

function renderState(state: SandboxState): string {
  const yes = (r: boolean | undefined) => (r === undefined ? '-' : r ? 'yes' : 'no');
  const k = state.kafka;
  const kafkaRows = k
    ? [
        ['kafka', k.brokers[0]!.split(':')[1], k.brokerPid, yes(k.running), `${k.brokers.join(',')} topic ${k.topic}`],
        ['kafka-connect', new URL(k.connectUrl).port, k.connectPid, yes(k.running), `${k.connectUrl} connector ${k.connector}`],
      ]
    : [];
  return [
    renderTable(
      ['server', 'port', 'pid', 'running', 'url'],
      [...state.servers.map((s) => [s.name, s.port, s.pid, yes(s.running), s.url]), ...kafkaRows],
    ),
    '',
    `config: ${state.configPath}`,
  ].join('\n');
}

/**
 * The state, and what to do with it. `sandbox up` creates the legacy database but not the table the
 * config copies (the demo seeds it): `init` alone would fail with "the source table does not exist".
 */
function renderStateAndNext(state: SandboxState): string {
  return [
    renderState(state),
    `next:   the config copies ${LEGACY_DATABASE}.member on the legacy server, which sandbox up does not create:`,
    `        create and fill it there, or run membermig sandbox demo --dir ${state.dir} (it seeds members and runs the whole cutover);`,
    `        then membermig init --config ${state.configPath}`,
  ].join('\n');
}
