import { userInfo } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { ExitCode, RefusedError } from '../../errors.js';
import { checkMember, rollbackGray, setGray, settingsHistory, showSettings, type ChangeResult, type MemberCheck, type TableView } from '../../gray/operations.js';
import { formatPercent, parsePercent } from '../../gray/percent.js';
import type { GraySetting } from '../../gray/route.js';
import type { HistoryEntry } from '../../gray/settings.js';
import { openControlStore, requireMigratedStore, requireUsableStore, type ControlStore } from '../../store/control.js';
import type { Config } from '../../config/schema.js';
import type { Run } from '../main.js';
import { renderTable } from '../render.js';

export function registerGray(program: Command, run: Run): void {
  const gray = program
    .command('gray')
    .summary("Phase 5: move a percentage of members' reads and writes to MySQL; roll back instantly")
    .description(
      [
        "Phase 5 of the cutover. Per table: the percentage of members whose reads go to MySQL (--read) and whose",
        'writes move one shim step further (--write), in steps of 0.01%, plus an allowlist (always MySQL, e.g. staff)',
        'and a denylist (always legacy, e.g. VIPs; it wins over the allowlist). A member is inside a percentage',
        'when murmur3("salt:memberId") mod 10000 < basis points, so raising a percentage only adds members.',
        '',
        'Raising anything is gated: the last verify of the table clean and recent, sync lag small, no dead letters',
        '(config gray.gates). --force --reason overrides and the override is recorded. Rollback is never gated.',
        '',
        'Exit codes: 0 done; 2 refused (bad input, a gate), nothing changed.',
      ].join('\n'),
    );

  gray
    .command('set <table>')
    .description('change the read/write percentages and the allow/deny lists of a table')
    .option('--read <percent>', 'members whose reads go to MySQL, e.g. 5% or 0.25%')
    .option('--write <percent>', 'members whose writes take the shim mode (the others take the step before)')
    .option('--allow <ids>', 'add member ids (comma-separated) to the allowlist', collectIds, [])
    .option('--unallow <ids>', 'remove member ids from the allowlist', collectIds, [])
    .option('--deny <ids>', 'add member ids to the denylist', collectIds, [])
    .option('--undeny <ids>', 'remove member ids from the denylist', collectIds, [])
    .option('--reason <text>', 'why (recorded in the history; required)')
    .option('--operator <name>', 'who (default $MEMBERMIG_OPERATOR, else $USER)')
    .option('--force', 'override failed gates (needs --reason; recorded as forced)')
    .action(async (table: string, opts: SetOptions, cmd: Command) =>
      run(cmd, async (ctx) => {
        const read = opts.read === undefined ? undefined : parsePercent(opts.read, '--read');
        const write = opts.write === undefined ? undefined : parsePercent(opts.write, '--write');
        const { config } = ctx.loadConfig();
        // The shard map is checked by setGray for a raise only: a move back to legacy must work whatever the config's map says.
        const result = await withStore(
          config,
          (store) => setGray(store, config, table, { read, write, allow: opts.allow, unallow: opts.unallow, deny: opts.deny, undeny: opts.undeny }, changeContext(opts)),
          { routes: false },
        );
        return ctx.finish(ExitCode.Ok, result, (r) => renderGrayChange([r]));
      }),
    );

  gray
    .command('rollback [table]')
    .description('back to the previous setting (or --to 0) for one table or all; never gated')
    .option('--to <percent>', 'only 0: every percentage to 0% and the allowlist emptied')
    .option('--if-version <n>', "only if the table(s) did not change after settings version n (gray show's): two rollbacks of one incident step back once")
    .option('--reason <text>', 'why (recorded in the history)')
    .option('--operator <name>', 'who (default $MEMBERMIG_OPERATOR, else $USER)')
    .action(async (table: string | undefined, opts: { to?: string; ifVersion?: string; reason?: string; operator?: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        if (opts.to !== undefined && parsePercent(opts.to, '--to') !== 0) throw new RefusedError(`--to only takes 0 (got ${opts.to}); to lower to another value use gray set`);
        const ifVersion = opts.ifVersion === undefined ? undefined : parseVersion(opts.ifVersion);
        const { config } = ctx.loadConfig();
        const tables = table ? [table] : Object.keys(config.tables);
        const options = { toZero: opts.to !== undefined, ...(ifVersion !== undefined ? { ifVersion } : {}) };
        const results = await withStore(config, (store) => rollbackGray(store, config, tables, options, changeContext(opts)), { routes: false });
        return ctx.finish(ExitCode.Ok, results, renderGrayChange);
      }),
    );

  gray
    .command('show [table]')
    .description('the current percentages, lists and shim mode of every table (or one)')
    .action(async (table: string | undefined, _opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { config } = ctx.loadConfig();
        const views = await withStore(config, (store) => showSettings(store, config, table ? [table] : undefined), { routes: false });
        return ctx.finish(ExitCode.Ok, views, renderGrayShow);
      }),
    );

  gray
    .command('history [table]')
    .description('every gray change, newest first: time, operator, reason, before and after')
    .option('--limit <n>', 'how many', '50')
    .action(async (table: string | undefined, opts: { limit: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const limit = parseLimit(opts.limit);
        const { config } = ctx.loadConfig();
        const history = await withStore(config, (store) => settingsHistory(store, config, 'gray', table, limit), { routes: false });
        return ctx.finish(ExitCode.Ok, history, (h) => renderHistory(h, describeGray));
      }),
    );

  gray
    .command('check <table> <memberId>')
    .description("explain one member's route: bucket, lists, percentages, mode")
    .action(async (table: string, memberId: string, _opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { config } = ctx.loadConfig();
        const check = await withStore(config, (store) => checkMember(store, config, table, memberId));
        return ctx.finish(ExitCode.Ok, check, renderCheck);
      }),
    );
}

interface SetOptions {
  read?: string;
  write?: string;
  allow: string[];
  unallow: string[];
  deny: string[];
  undeny: string[];
  reason?: string;
  operator?: string;
  force?: boolean;
}

/** Ids as typed: a text key's " vip" is not "vip" (an integer key's spaces are dropped in memberIdsAsSent). */
function collectIds(value: string, previous: string[]): string[] {
  const ids = value.split(',');
  if (ids.some((id) => id.trim() === '')) throw new InvalidArgumentError(`member id list "${value}" has an empty id`);
  return [...previous, ...ids];
}

function parseVersion(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) throw new RefusedError(`--if-version must be a settings version (a whole number, as gray show gives it), got "${text}"`);
  return n;
}

export function parseLimit(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new RefusedError(`--limit must be a positive integer, got "${text}"`);
  return n;
}

/** Who made a change: --operator, else $MEMBERMIG_OPERATOR, else $USER, else the OS account. */
export function resolveOperator(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const fromFlag = flag?.trim();
  if (fromFlag) return fromFlag;
  const fromEnv = env.MEMBERMIG_OPERATOR?.trim() || env.USER?.trim() || env.USERNAME?.trim();
  if (fromEnv) return fromEnv;
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

export function changeContext(opts: { reason?: string; operator?: string; force?: boolean }): { operator: string; reason?: string; force: boolean } {
  return { operator: resolveOperator(opts.operator), reason: opts.reason, force: opts.force === true };
}

/**
 * Runs work on the control store. `routes: false` for work that routes no key by the config's
 * shard map (a rollback, a step back, a view): a config whose map was mis-edited must not block
 * the way back in an incident. Everything else requires the recorded map.
 */
export async function withStore<T>(config: Config, work: (store: ControlStore) => Promise<T>, { routes = true } = {}): Promise<T> {
  const store = openControlStore(config, 2);
  try {
    if (routes) await requireUsableStore(store, config.shards);
    else await requireMigratedStore(store);
    return await work(store);
  } finally {
    await store.close();
  }
}

function describeGray(v: unknown): string {
  if (v === null || v === undefined) return '-';
  const g = v as GraySetting;
  const lists = `${g.allow?.length ? ` allow ${g.allow.length}` : ''}${g.deny?.length ? ` deny ${g.deny.length}` : ''}`;
  return `read ${formatPercent(g.read_bp)} write ${formatPercent(g.write_bp)}${lists}`;
}

export function renderGrayChange(results: ChangeResult<GraySetting>[]): string {
  const lines: string[] = [];
  for (const r of results) {
    if (!r.changed) {
      lines.push(`${r.table}: unchanged (${describeGray(r.after)})`);
    } else {
      lines.push(`${r.table}: ${describeGray(r.before)} -> ${describeGray(r.after)} (settings version ${r.version}, by ${r.operator})`);
      if (r.forced) lines.push('  FORCED past failed gates (recorded)');
      for (const g of r.gates) lines.push(`  gate ${g.gate}: ${g.ok ? 'ok' : 'FAILED'}: ${g.message}`);
    }
    for (const note of r.notes) lines.push(`  note: ${note}`);
  }
  return lines.join('\n');
}

function renderGrayShow(views: TableView[]): string {
  return renderTable(
    ['table', 'shim mode', 'read', 'write', 'allow', 'deny', 'salt', 'version', 'updated'],
    views.map((v) => [v.table, v.mode, v.read, v.write, v.allow.length, v.deny.length, v.salt, v.version, v.updatedAt]),
  );
}

export function renderHistory(history: HistoryEntry[], describe: (v: unknown) => string): string {
  if (history.length === 0) return 'no changes recorded';
  return renderTable(
    ['id', 'time', 'table', 'action', 'before', 'after', 'operator', 'forced', 'reason'],
    history.map((h) => [h.id, h.changedAt, h.table, h.action, describe(h.oldValue), describe(h.newValue), h.operator, h.forced ? 'FORCED' : '', h.reason]),
  );
}

function renderCheck(c: MemberCheck): string {
  return [
    `table ${c.table}, member ${c.memberId}: reads ${c.read}, writes ${c.write.replace(/_/g, ' ')}`,
    `  shim mode ${c.mode}; read ${formatPercent(c.readBp)}, write ${formatPercent(c.writeBp)}`,
    `  why: ${c.why}`,
    ...c.notes.map((note) => `  note: ${note}`),
  ].join('\n');
}
