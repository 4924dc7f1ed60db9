import type { TableSpec } from '../../rows/types.js';
import { Lsn } from './lsn.js';
import { coversLsn, type CdcPosition } from './position.js';

/**
 * What a DDL on legacy's table means for the direct CDC sync (pure). A capture instance keeps the
 * shape it was created with: a column added later is not captured, a dropped one is captured as
 * NULL, and a column whose type changed gets the new type in the change table while sync still
 * converts it, and the shard tables hold it, as the type it read when it started. Changes after
 * such a DDL would reach the shards without the new column's values or with values bent, so sync
 * applies every change before the DDL and stops there (src/cdc/mssql/source.ts).
 *
 * The DDL text is read conservatively: a statement it cannot read is taken to change the copied
 * columns, and a DROP naming a copied column stops sync even if the name was a constraint's.
 */

/** A row of sys.sp_cdc_get_ddl_history (DDL_HISTORY_SQL) as tedious returns it. */
export interface DdlHistoryRow {
  source_schema: string;
  source_table: string;
  capture_instance: string;
  ddl_command: string | null;
  /** binary(10): a Buffer. */
  ddl_lsn: Buffer;
  /** datetime, server-local: with useUTC (connect.ts) the Date's UTC fields are the server's wall clock. */
  ddl_time: Date | null;
}

/** The table as the source reads it. */
export interface DdlTable {
  name: string;
  instance: string;
  spec: TableSpec;
  /** tables.<name>.exclude_columns, as exact legacy names. */
  excludedColumns: readonly string[];
}

export type DdlAction =
  | { kind: 'add'; columns: string[] }
  /** Names dropped: columns, and maybe constraints (DROP names both). */
  | { kind: 'drop'; names: string[] }
  | { kind: 'alter'; column: string }
  | { kind: 'unknown' };

/**
 * other-table: not this instance's table. passed: at or before the position, so every change read
 * from here on was made after it (and a sync started since read the table's columns after it).
 * not-copied: after the position, but no column sync copies changed. stop: sync cannot go past it.
 */
export type DdlVerdict = 'other-table' | 'passed' | 'not-copied' | 'stop';

export interface DdlDecision {
  verdict: DdlVerdict;
  action: DdlAction;
  lsn: Lsn;
  /** Server-local 'YYYY-MM-DD HH:MM:SS.mmm', or null. */
  time: string | null;
  /** The statement as shown in messages: string literals (defaults may hold anything) left out, one line, cut. */
  shown: string;
  /** What it does to this table, e.g. "adds column vip, which capture instance dbo_Member does not capture". */
  why: string;
}

/** The decisions on an instance's DDL history, in LSN order. */
export function ddlDecisions(table: DdlTable, position: CdcPosition, rows: DdlHistoryRow[]): DdlDecision[] {
  return rows.map((r) => decideDdl(table, position, r)).sort((a, b) => a.lsn.compare(b.lsn));
}

/** The first DDL sync cannot go past, or null. */
export function firstStop(decisions: DdlDecision[]): DdlDecision | null {
  return decisions.find((d) => d.verdict === 'stop') ?? null;
}

export function decideDdl(table: DdlTable, position: CdcPosition, row: DdlHistoryRow): DdlDecision {
  const action = parseDdl(row.ddl_command ?? '');
  const base = { action, lsn: Lsn.parse(row.ddl_lsn), time: serverTime(row.ddl_time), shown: shownDdl(row.ddl_command ?? '') };
  const { spec } = table;
  const ours = sameName(row.capture_instance, table.instance) && sameName(row.source_schema, spec.sourceSchema) && sameName(row.source_table, spec.sourceTable);
  if (!ours) return { ...base, verdict: 'other-table', why: `is a DDL of ${row.source_schema}.${row.source_table} (capture instance ${row.capture_instance})` };
  if (coversLsn(position, base.lsn)) return { ...base, verdict: 'passed', why: 'was made before the changes sync reads now' };
  const copied = (name: string) => spec.columns.some((c) => sameName(c.source, name));
  switch (action.kind) {
    case 'add': {
      // An ADD spells the new column's name exactly as the catalog will, and exclude_columns must match that.
      const taken = action.columns.filter((c) => !table.excludedColumns.includes(c));
      if (taken.length > 0) return { ...base, verdict: 'stop', why: `adds ${columnList(taken)}, which capture instance ${table.instance} does not capture` };
      return { ...base, verdict: 'not-copied', why: action.columns.length > 0 ? `adds ${columnList(action.columns)}, left out by tables.${table.name}.exclude_columns` : 'adds no column' };
    }
    case 'drop': {
      // Names compare case-insensitively (the usual collations): a wrong match only stops sync.
      const dropped = action.names.filter(copied);
      if (dropped.length > 0) return { ...base, verdict: 'stop', why: `drops ${columnList(dropped)}, which sync copies: CDC records NULL for it from here on` };
      return { ...base, verdict: 'not-copied', why: `drops ${action.names.join(', ')}, which sync does not copy` };
    }
    case 'alter':
      if (copied(action.column)) {
        return { ...base, verdict: 'stop', why: `changes column ${action.column}, which sync copies, converts and writes as the type it read when it started` };
      }
      return { ...base, verdict: 'not-copied', why: `changes column ${action.column}, which sync does not copy` };
    case 'unknown':
      return { ...base, verdict: 'stop', why: 'is a statement membermig cannot read, so it may change columns sync copies' };
  }
}

/**
 * The highest LSN sync may read up to: the max LSN, or the last LSN before the DDL it must stop at.
 * Exactly there: every change committed before the DDL is applied, and the saved position (at most
 * that LSN) never passes it, so a restarted sync meets the DDL again.
 */
export function readLimit(maxLsn: Lsn | null, stop: DdlDecision | null): Lsn | null {
  if (!stop || maxLsn === null) return maxLsn;
  const before = stop.lsn.decrement();
  return maxLsn.compare(before) < 0 ? maxLsn : before;
}

export class CdcSchemaChangeError extends Error {
  override name = 'CdcSchemaChangeError';
}

/** The stop: which table, which DDL, where sync stands, and what to do. */
export function schemaChangeError(table: DdlTable, stop: DdlDecision, position: CdcPosition): CdcSchemaChangeError {
  const { spec, name } = table;
  const at = `LSN ${stop.lsn.toString()}${stop.time ? ` (${stop.time} server time)` : ''}`;
  return new CdcSchemaChangeError(
    `table ${name}: legacy's table ${spec.sourceSchema}.${spec.sourceTable} changed at ${at}: "${stop.shown}" ${stop.why}. ` +
      `Sync applied the table's changes up to ${position.lsn.toString()}, before it, and stops: it cannot apply the later ones unbent. ${remedy(table, stop.action)}`,
  );
}

function remedy(table: DdlTable, action: DdlAction): string {
  const { name, instance } = table;
  const switchInstance =
    `create a capture instance of the table as it is now (sys.sp_cdc_enable_table with a new @capture_instance; at most two per table), ` +
    `set cdc.mssql.capture_instances.${name} to it, copy the table again (membermig full --restart --tables ${name}: ` +
    `the new instance holds no change from before it was created) and start sync, which goes on from that copy's start; then disable ${instance}`;
  const differs = '(membermig init --check names what differs)';
  switch (action.kind) {
    case 'add': {
      const added = action.columns.filter((c) => !table.excludedColumns.includes(c)).join(', ');
      return `To leave ${added} out, add it to tables.${name}.exclude_columns and start sync again. To copy it, add it to the shard tables ${differs}, ${switchInstance}.`;
    }
    case 'drop':
      return `Drop it from the shard tables too ${differs} and start sync again: it reads legacy's columns afresh and no longer copies it.`;
    case 'alter':
      return `Change the shard tables to match ${differs}; as sync stops here again while it reads ${instance}, ${switchInstance}.`;
    case 'unknown':
      return `Check what it changed and make the shard tables match legacy ${differs}; as sync stops here again while it reads ${instance}, ${switchInstance}.`;
  }
}

function columnList(columns: string[]): string {
  return (columns.length === 1 ? 'column ' : 'columns ') + columns.join(', ');
}

// ---- reading the DDL text -----------------------------------------------------------------------

interface Token {
  /** name: a [bracketed] or "quoted" identifier, unquoted; word: a bare identifier, keyword or number. */
  kind: 'name' | 'word' | 'string' | 'symbol';
  text: string;
}

/** Words that begin an ALTER TABLE … ADD item that is a constraint, not a column (PERIOD: see addedColumns). */
const CONSTRAINT_START = new Set(['CONSTRAINT', 'PRIMARY', 'UNIQUE', 'FOREIGN', 'CHECK', 'DEFAULT', 'INDEX']);

/**
 * ALTER TABLE <table> [WITH [NO]CHECK] ADD … | DROP … | ALTER COLUMN <column> …; anything else
 * (another statement, several, text it cannot split) is unknown. The table's name is not read:
 * the history row names it.
 */
export function parseDdl(command: string): DdlAction {
  const { tokens } = scan(command);
  if (!tokens) return { kind: 'unknown' };
  while (isSymbol(tokens.at(-1), ';')) tokens.pop();
  if (tokens.some((t) => isSymbol(t, ';'))) return { kind: 'unknown' };
  if (!isWord(tokens[0], 'ALTER') || !isWord(tokens[1], 'TABLE')) return { kind: 'unknown' };
  let i = afterName(tokens, 2);
  if (i < 0) return { kind: 'unknown' };
  if (isWord(tokens[i], 'WITH') && (isWord(tokens[i + 1], 'CHECK') || isWord(tokens[i + 1], 'NOCHECK'))) i += 2;
  if (isWord(tokens[i], 'ADD')) return addedColumns(items(tokens.slice(i + 1)));
  if (isWord(tokens[i], 'DROP')) return droppedNames(items(tokens.slice(i + 1)));
  if (isWord(tokens[i], 'ALTER') && isWord(tokens[i + 1], 'COLUMN') && isIdentifier(tokens[i + 2])) return { kind: 'alter', column: tokens[i + 2]!.text };
  return { kind: 'unknown' };
}

function addedColumns(list: Token[][] | null): DdlAction {
  if (!list) return { kind: 'unknown' };
  const columns: string[] = [];
  for (const item of list) {
    const first = item[0];
    if (first?.kind === 'word' && CONSTRAINT_START.has(first.text.toUpperCase())) continue;
    // PERIOD FOR SYSTEM_TIME (…); PERIOD is no reserved word, so ADD period int adds a column named period.
    if (isWord(first, 'PERIOD') && isWord(item[1], 'FOR')) continue;
    if (!isIdentifier(first)) return { kind: 'unknown' };
    columns.push(first.text);
  }
  return { kind: 'add', columns };
}

/** DROP [COLUMN | CONSTRAINT] [IF EXISTS] name [, …]: every name, whichever it is. */
function droppedNames(list: Token[][] | null): DdlAction {
  if (!list) return { kind: 'unknown' };
  const names: string[] = [];
  for (const item of list) {
    let j = 0;
    if (isWord(item[j], 'COLUMN') || isWord(item[j], 'CONSTRAINT')) j++;
    if (isWord(item[j], 'IF') && isWord(item[j + 1], 'EXISTS')) j += 2;
    if (isWord(item[j], 'PERIOD') && isWord(item[j + 1], 'FOR')) continue; // DROP PERIOD FOR SYSTEM_TIME
    if (!isIdentifier(item[j])) return { kind: 'unknown' };
    names.push(item[j]!.text);
  }
  return names.length > 0 ? { kind: 'drop', names } : { kind: 'unknown' };
}

/** The index after a (schema-qualified) name starting at `i`, or -1. */
function afterName(tokens: Token[], i: number): number {
  if (!isIdentifier(tokens[i])) return -1;
  while (isSymbol(tokens[i + 1], '.') && isIdentifier(tokens[i + 2])) i += 2;
  return i + 1;
}

/** The comma-separated items of a list, commas inside parentheses kept; null for an empty item or unbalanced parentheses. */
function items(tokens: Token[]): Token[][] | null {
  const list: Token[][] = [[]];
  let depth = 0;
  for (const t of tokens) {
    if (isSymbol(t, '(')) depth++;
    if (isSymbol(t, ')') && --depth < 0) return null;
    if (depth === 0 && isSymbol(t, ',')) list.push([]);
    else list.at(-1)!.push(t);
  }
  return depth === 0 && list.every((item) => item.length > 0) ? list : null;
}

/**
 * T-SQL tokens without comments (null when a quote, bracket or comment is not closed), and the
 * text as shown in messages: string literals as '…' (a DEFAULT may hold anything), comments
 * dropped, whitespace as one space, at most 200 characters.
 */
function scan(text: string): { tokens: Token[] | null; shown: string } {
  const tokens: Token[] = [];
  let shown = '';
  const done = (complete: boolean) => {
    const line = (shown.replace(/\s+/g, ' ').trim() + (complete ? '' : ' …')).trim();
    return { tokens: complete ? tokens : null, shown: line.length > 200 ? line.slice(0, 199) + '…' : line };
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      shown += ' ';
      i++;
    } else if (text.startsWith('--', i)) {
      shown += ' ';
      i = lineEnd(text, i);
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) return done(false);
      shown += ' ';
      i = end + 2;
    } else if (c === '[' || c === '"') {
      const q = quoted(text, i, c === '[' ? ']' : '"');
      if (!q) return done(false);
      tokens.push({ kind: 'name', text: q.value });
      shown += text.slice(i, q.end);
      i = q.end;
    } else if (c === "'" || ((c === 'N' || c === 'n') && text[i + 1] === "'")) {
      const q = quoted(text, c === "'" ? i : i + 1, "'");
      if (!q) return done(false);
      tokens.push({ kind: 'string', text: q.value });
      shown += "'…'";
      i = q.end;
    } else {
      const word = /^[\p{L}\p{N}_@#$]+/u.exec(text.slice(i, i + 256))?.[0];
      const token: Token = word ? { kind: 'word', text: word } : { kind: 'symbol', text: c };
      tokens.push(token);
      shown += token.text;
      i += token.text.length;
    }
  }
  return done(true);
}

/** A quoted run starting at `start` (its opening character), where the closing one is escaped by doubling. */
function quoted(text: string, start: number, close: string): { value: string; end: number } | null {
  let value = '';
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] !== close) value += text[i];
    else if (text[i + 1] === close) value += text[i++];
    else return { value, end: i + 1 };
  }
  return null;
}

function lineEnd(text: string, i: number): number {
  const end = text.indexOf('\n', i);
  return end < 0 ? text.length : end;
}

function isWord(t: Token | undefined, word: string): boolean {
  return t?.kind === 'word' && t.text.toUpperCase() === word;
}

function isSymbol(t: Token | undefined, symbol: string): boolean {
  return t?.kind === 'symbol' && t.text === symbol;
}

function isIdentifier(t: Token | undefined): t is Token {
  return t?.kind === 'name' || (t?.kind === 'word' && /^[\p{L}_@#]/u.test(t.text));
}

/** The statement as messages show it (scan). */
export function shownDdl(command: string): string {
  return scan(command).shown;
}

/** The history's datetime as the server's wall clock (tedious builds it as UTC: connect.ts sets useUTC). */
function serverTime(time: Date | null): string | null {
  if (!(time instanceof Date) || Number.isNaN(time.getTime())) return null;
  return time.toISOString().replace('T', ' ').replace('Z', '');
}

/** SQL Server names compare case-insensitively under the usual database collations. */
const sameName = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
