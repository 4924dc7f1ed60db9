import type { Command } from 'commander';
import { ExitCode, NotBuiltError } from '../../errors.js';
import { DEFAULT_SANDBOX_DIR, sandboxDown, sandboxStatus, sandboxUp, type SandboxState } from '../../sandbox/index.js';
import type { Run } from '../main.js';
import { renderTable } from '../render.js';

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
    .option('--shards <n>', 'logical shards in the written config', '16')
    .option('--no-kafka', 'skip Kafka and Kafka Connect with Debezium (no cdc section in the config)')
    .action(async (opts: { dir: string; shards: string; kafka: boolean }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const state = await sandboxUp({ dir: opts.dir, shardCount: Number(opts.shards), kafka: opts.kafka, logger: ctx.logger });
        return ctx.finish(ExitCode.Ok, state, renderState);
      }),
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
    .description('seed members and run the whole cutover runbook on the sandbox')
    .option(...dirOption)
    .option('--rows <n>', 'members to seed', '200000')
    .action(async (_opts: unknown, cmd: Command) => run(cmd, async () => Promise.reject(new NotBuiltError('sandbox demo'))));
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
    `try:    membermig init --config ${state.configPath}`,
  ].join('\n');
}
