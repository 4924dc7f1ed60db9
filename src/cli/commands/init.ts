import type { Command } from 'commander';
import { ExitCode } from '../../errors.js';
import { runInit, type InitResult } from '../../init/index.js';
import { describePrivileges, requiredPrivileges } from '../../preflight/index.js';
import type { Run } from '../main.js';
import { renderTable } from '../render.js';
import { recreatedWarning } from '../../store/recreated-tables.js';

export function registerInit(program: Command, run: Run): void {
  program
    .command('init')
    .summary('Phase 0: check config, servers and privileges; create the control store and shard databases')
    .description(
      [
        'Phase 0 of the cutover. Validates the config, connects to every server (control store, each shard',
        'server, the legacy source), checks version, privileges, character set, time zone and sql_mode, then',
        'creates the control store schema and every shard database. Safe to run again: a second run changes',
        'nothing and says so. With --check nothing is changed.',
        '',
        'Privileges each account needs:',
        ...Object.keys(requiredPrivileges).map((role) => `  ${role.padEnd(8)} ${describePrivileges(role as keyof typeof requiredPrivileges)}`),
        '',
        'Exit codes: 0 ready; 1 ready, but shard tables were created (now or by an earlier init) for a table a full copy',
        'already filled: they are empty (said on every run until a clean verify of the table begins after that);',
        '2 config or preflight problems (nothing was changed).',
      ].join('\n'),
    )
    .option('--check', 'only run the preflight checks; change nothing')
    .action(async (opts: { check?: boolean }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { config } = ctx.loadConfig();
        const result = await runInit(config, { logger: ctx.logger, checkOnly: opts.check === true });
        return ctx.finish(!result.ok ? ExitCode.Refused : result.createdAfterCopy ? ExitCode.Problems : ExitCode.Ok, result, renderInit);
      }),
    );
}

export function renderInit(r: InitResult): string {
  const lines: string[] = [];
  lines.push(
    renderTable(
      ['server', 'role', 'version', 'findings'],
      r.servers.map((s) => [s.label, s.role, s.version ?? '-', s.findings.length === 0 ? 'ok' : s.findings.map((f) => `${f.severity}: ${f.message}`).join('; ')]),
    ),
  );
  if (!r.ok) {
    lines.push('', 'Preflight found errors; nothing was changed.');
    return lines.join('\n');
  }
  if (!r.control) {
    lines.push('', 'Preflight passed (--check: nothing was changed).');
    return lines.join('\n');
  }
  lines.push('');
  lines.push(
    `control store ${r.control.database}: ${r.control.databaseCreated ? 'created, ' : ''}` +
      (r.control.applied.length > 0 ? `applied ${r.control.applied.join(', ')}` : `up to date (${r.control.alreadyApplied} migrations)`),
  );
  for (const s of r.shardDatabases ?? []) lines.push(`server ${s.server}: ${count(s.created, 'shard database')} created, ${s.existing} already there`);
  for (const s of r.shardTables ?? []) lines.push(`server ${s.server}: ${count(s.created, 'shard table')} created, ${s.existing} already there`);
  for (const c of r.createdAfterCopy ?? []) lines.push('', `warning: ${recreatedWarning(c)}.`);
  // Nothing created now, but shard tables created earlier are still empty: not "everything in place".
  if (r.unchanged && !r.createdAfterCopy) lines.push('', 'Nothing to do: everything was already in place.');
  else if (r.unchanged) lines.push('', 'Nothing was created now; the shard tables above are still to be filled and verified.');
  return lines.join('\n');
}

const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;
