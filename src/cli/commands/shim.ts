import type { Command } from 'commander';
import { ExitCode } from '../../errors.js';
import { releaseHeldKeys, setShimMode, settingsHistory, showSettings, type ChangeResult, type TableView } from '../../gray/operations.js';
import { SHIM_MODES, type ShimSetting } from '../../gray/route.js';
import type { Run } from '../main.js';
import { renderTable } from '../render.js';
import { changeContext, parseLimit, renderHistory, withStore } from './gray.js';

export function registerShim(program: Command, run: Run): void {
  const shim = program
    .command('shim')
    .summary('Phase 2: set how application services write each table (legacy only, dual writes, MySQL only)')
    .description(
      [
        `Phase 2 of the cutover. Modes, in order: ${SHIM_MODES.join(' -> ')}.`,
        'Forward one step at a time, gated like gray raises (clean recent verify, small sync lag, no dead letters;',
        'from a dual mode also its write percentage at 100%); back any number of steps at once, never gated.',
        'Moving forward restarts the write percentage at 0% (the new step starts empty); moving back sets it to',
        '100% (the whole table is then in the mode named). Services embedding membermig/shim follow within 2 s.',
        '',
        'Exit codes: 0 done; 2 refused (bad input, a gate), nothing changed.',
      ].join('\n'),
    );

  shim
    .command('set <table> <mode>')
    .description(`set the shim mode of a table (${SHIM_MODES.join(', ')})`)
    .option('--reason <text>', 'why (recorded in the history; required)')
    .option('--operator <name>', 'who (default $MEMBERMIG_OPERATOR, else $USER)')
    .option('--force', 'override failed gates (recorded as forced)')
    .action(async (table: string, mode: string, opts: { reason?: string; operator?: string; force?: boolean }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { config } = ctx.loadConfig();
        // A step forward checks the shard map itself (setShimMode); a step back routes nothing.
        const result = await withStore(config, (store) => setShimMode(store, config, table, mode, changeContext(opts)), { routes: false });
        return ctx.finish(ExitCode.Ok, result, renderShimChange);
      }),
    );

  shim
    .command('release-held <table>')
    .description(
      "with legacy the primary again: let legacy's rows win for keys whose MySQL row holds a write legacy missed (a failed legacy write in a MySQL-primary mode); sync applies legacy's changes of them again and verify --repair copies them from legacy",
    )
    .option('--reason <text>', 'why (recorded with each entry; required)')
    .option('--operator <name>', 'who (default $MEMBERMIG_OPERATOR, else $USER)')
    .action(async (table: string, opts: { reason?: string; operator?: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { config } = ctx.loadConfig();
        const result = await withStore(config, (store) => releaseHeldKeys(store, config, table, changeContext(opts)));
        return ctx.finish(ExitCode.Ok, result, (r) => `${r.table}: ${r.released} held key(s) released (legacy's rows win), by ${r.operator}: ${r.reason}`);
      }),
    );

  shim
    .command('show [table]')
    .description('the shim mode of every table (or one)')
    .action(async (table: string | undefined, _opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { config } = ctx.loadConfig();
        const views = await withStore(config, (store) => showSettings(store, config, table ? [table] : undefined), { routes: false });
        return ctx.finish(ExitCode.Ok, views, renderShimShow);
      }),
    );

  shim
    .command('history [table]')
    .description('every shim mode change, newest first: time, operator, reason, before and after')
    .option('--limit <n>', 'how many', '50')
    .action(async (table: string | undefined, opts: { limit: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const limit = parseLimit(opts.limit);
        const { config } = ctx.loadConfig();
        const history = await withStore(config, (store) => settingsHistory(store, config, 'shim', table, limit), { routes: false });
        return ctx.finish(ExitCode.Ok, history, (h) => renderHistory(h, (v) => (v ? (v as ShimSetting).mode : '-')));
      }),
    );
}

export function renderShimChange(r: ChangeResult<ShimSetting>): string {
  if (!r.changed) return `${r.table}: already ${r.after.mode}; nothing changed`;
  const lines = [`${r.table}: ${r.before.mode} -> ${r.after.mode} (settings version ${r.version}, by ${r.operator})`];
  if (r.forced) lines.push('  FORCED past failed gates (recorded)');
  for (const g of r.gates) lines.push(`  gate ${g.gate}: ${g.ok ? 'ok' : 'FAILED'}: ${g.message}`);
  for (const n of r.notes) lines.push(`  ${n}`);
  return lines.join('\n');
}

function renderShimShow(views: TableView[]): string {
  return renderTable(['table', 'shim mode', 'write', 'version', 'updated'], views.map((v) => [v.table, v.mode, v.write, v.version, v.updatedAt]));
}
