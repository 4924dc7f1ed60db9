import type { Connection, RowDataPacket } from 'mysql2/promise';
import { RefusedError } from '../errors.js';
import { quoteId } from '../mysql/connect.js';
import { isIntegerDataType } from '../rows/mysql.js';
import { targetCollationOfColumn } from '../rows/ddl.js';
import type { ColumnSpec, TableSpec } from '../rows/types.js';

/**
 * Checks that an existing shard table has the shape the row pipeline writes: the same columns
 * in the same order with the same types, nullability and text collations, the same primary
 * key, no other unique index, and the InnoDB engine. Returns the problems found, each naming
 * database, table and column, index or engine.
 */

interface ColumnRow extends RowDataPacket {
  db: string;
  tbl: string;
  name: string;
  column_type: string;
  nullable: string;
  collation: string | null;
  column_key: string;
}

export interface ExistingTables {
  /** `${database}.${table}` → its columns in order. */
  columns: Map<string, ColumnRow[]>;
  /** `${database}.${table}` → primary key columns in order. */
  primaryKeys: Map<string, string[]>;
  /** `${database}.${table}` → its UNIQUE indexes other than PRIMARY. */
  uniqueKeys: Map<string, UniqueIndex[]>;
  /** `${database}.${table}` → its storage engine (null for a view). */
  engines: Map<string, string | null>;
}

export interface UniqueIndex {
  name: string;
  /** In index order. column is null for an expression part (MySQL 8); subPart is a prefix length. */
  parts: { column: string | null; subPart: string | null }[];
}

interface KeyRow extends RowDataPacket {
  db: string;
  tbl: string;
  idx: string;
  name: string | null;
  sub_part: number | string | null;
}

/**
 * Reads the columns, primary keys, other unique indexes and engines of the given tables in the given
 * databases on one server: three queries per server, whatever the number of shard tables.
 */
export async function readExistingTables(conn: Connection, databases: string[], tables: string[]): Promise<ExistingTables> {
  const found: ExistingTables = { columns: new Map(), primaryKeys: new Map(), uniqueKeys: new Map(), engines: new Map() };
  if (databases.length === 0 || tables.length === 0) return found;
  const [rows] = await conn.query<ColumnRow[]>(
    `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, COLUMN_NAME AS name, COLUMN_TYPE AS column_type, IS_NULLABLE AS nullable,
            COLLATION_NAME AS collation, COLUMN_KEY AS column_key
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN (?) AND TABLE_NAME IN (?) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
    [databases, tables],
  );
  for (const r of rows) append(found.columns, `${r.db}.${r.tbl}`, r);
  // PRIMARY and every other unique index in one pass: both decide which row a write by key replaces.
  const [keys] = await conn.query<KeyRow[]>(
    `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, INDEX_NAME AS idx, COLUMN_NAME AS name, SUB_PART AS sub_part FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA IN (?) AND TABLE_NAME IN (?) AND (INDEX_NAME = 'PRIMARY' OR NON_UNIQUE = 0)
      ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`,
    [databases, tables],
  );
  for (const k of keys) {
    const key = `${k.db}.${k.tbl}`;
    if (k.idx === 'PRIMARY') append(found.primaryKeys, key, k.name ?? '');
    else addUniqueColumn(found.uniqueKeys, key, k);
  }
  const [engines] = await conn.query<RowDataPacket[]>(
    'SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, ENGINE AS engine FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?) AND TABLE_NAME IN (?)',
    [databases, tables],
  );
  for (const e of engines) found.engines.set(`${e.db}.${e.tbl}`, e.engine ?? null);
  return found;
}

function append<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Rows arrive in index order, so a part belongs to the table's last index unless the name changed. */
function addUniqueColumn(uniqueKeys: Map<string, UniqueIndex[]>, key: string, k: KeyRow): void {
  const part = { column: k.name, subPart: k.sub_part === null ? null : String(k.sub_part) };
  const last = uniqueKeys.get(key)?.at(-1);
  if (last?.name === k.idx) last.parts.push(part);
  else append(uniqueKeys, key, { name: k.idx, parts: [part] });
}

/**
 * Integer display widths and spacing differ between servers and versions; JSON is LONGTEXT on
 * MariaDB. ENUM and SET members are values: compared as they are.
 */
export function normalizeType(type: string): string {
  const members = /^\s*(enum|set)\s*(\(.*\))\s*$/is.exec(type);
  if (members) return `${members[1]!.toLowerCase()}${members[2]}`;
  const t = type.toLowerCase().replace(/\s+/g, ' ').trim();
  const noWidth = t.replace(/^([a-z]+)\(\d+\)/, (typed, name: string) => (isIntegerDataType(name) || name === 'year' ? name : typed)).replace(/^integer\b/, 'int');
  return noWidth === 'json' ? 'longtext' : noWidth;
}

export function shapeProblems(server: string, database: string, spec: TableSpec, existing: ColumnRow[], primaryKey: string[]): string[] {
  const where = `table ${spec.name}: shard table ${database}.${spec.target} on server ${server}`;
  const problems: string[] = [];
  const byName = new Map(existing.map((c) => [c.name, c]));
  spec.columns.forEach((c: ColumnSpec, i) => {
    const found = byName.get(c.target);
    if (!found) return problems.push(`${where} has no column ${c.target} (expected ${c.targetType})`);
    // COLUMN_TYPE holds no character set: the SQL Server type map names it in the type, checked as the collation below.
    const expectedType = c.targetType.replace(/\s+CHARACTER\s+SET\s+\w+(\s+COLLATE\s+\w+)?\s*$/i, '');
    if (normalizeType(found.column_type) !== normalizeType(expectedType)) {
      problems.push(`${where} column ${c.target} is ${found.column_type}, expected ${expectedType}`);
    }
    if ((found.nullable === 'YES') !== c.nullable) problems.push(`${where} column ${c.target} is ${found.nullable === 'YES' ? 'NULL' : 'NOT NULL'}, expected ${c.nullable ? 'NULL' : 'NOT NULL'}`);
    // Either type map's collation: under a looser one, two keys the legacy side keeps apart are one shard row.
    const collation = targetCollationOfColumn(c);
    if (collation && found.collation !== collation) {
      problems.push(`${where} column ${c.target} has collation ${found.collation}, expected ${collation}`);
    }
    if (existing[i]?.name !== c.target && found) problems.push(`${where} column ${c.target} is at position ${existing.indexOf(found) + 1}, expected ${i + 1}`);
    return undefined;
  });
  const expected = new Set(spec.columns.map((c) => c.target));
  for (const c of existing) if (!expected.has(c.name)) problems.push(`${where} has column ${c.name}, which the copy does not write`);
  const expectedKey = spec.primaryKey.map((k) => spec.columns.find((c) => c.source === k)!.target);
  if (primaryKey.join(',') !== expectedKey.join(',')) {
    problems.push(`${where} has primary key (${primaryKey.join(', ')}), expected (${expectedKey.join(', ')})`);
  }
  return problems;
}

/**
 * A unique index other than PRIMARY makes the copy's writes by primary key hit the wrong row:
 * LOAD DATA ... REPLACE deletes the other row that has the same value, and INSERT ... ON
 * DUPLICATE KEY UPDATE updates it while the intended key never lands. Neither is an error.
 */
export function uniqueKeyProblems(server: string, database: string, spec: TableSpec, uniqueKeys: UniqueIndex[]): string[] {
  const table = `${quoteId(database)}.${quoteId(spec.target)}`;
  // An index holding every primary key column whole is unique through the primary key alone: harmless.
  const primary = spec.primaryKey.map((k) => spec.columns.find((c) => c.source === k)?.target ?? k);
  const harmful = uniqueKeys.filter((u) => !primary.every((k) => u.parts.some((p) => p.column === k && p.subPart === null)));
  return harmful.map((u) => {
    const columns = u.parts.map((p) => partText(p, (c) => c)).join(', ');
    const plain = u.parts.map((p) => partText(p, quoteId)).join(', ');
    return (
      `table ${spec.name}: shard table ${database}.${spec.target} on server ${server} has UNIQUE index ${u.name} (${columns}): ` +
      `REPLACE/upsert by primary key would delete or overwrite another member's row with the same (${columns}); ` +
      `make it a plain index, as membermig init does: ALTER TABLE ${table} DROP INDEX ${quoteId(u.name)}, ADD INDEX ${quoteId(u.name)} (${plain})`
    );
  });
}

/**
 * Only InnoDB is transactional and crash-safe: on MyISAM a group of shard writes that fails halfway
 * stays half written (no rollback), and a crash can lose rows a chunk recorded as copied.
 */
export function engineProblems(server: string, database: string, spec: TableSpec, engine: string | null | undefined): string[] {
  if (engine?.toLowerCase() === 'innodb') return [];
  return [
    `table ${spec.name}: shard table ${database}.${spec.target} on server ${server} uses engine ${engine ?? '(none)'}, expected InnoDB ` +
      `(writes must be transactional and crash-safe): ALTER TABLE ${quoteId(database)}.${quoteId(spec.target)} ENGINE=InnoDB`,
  ];
}

function partText(part: UniqueIndex['parts'][number], name: (column: string) => string): string {
  if (part.column === null) return '(expression)';
  return part.subPart === null ? name(part.column) : `${name(part.column)}(${part.subPart})`;
}

export function refuseShapeProblems(problems: string[]): void {
  if (problems.length === 0) return;
  const shown = problems.slice(0, 20);
  const more = problems.length > shown.length ? `\n  ... and ${problems.length - shown.length} more` : '';
  throw new RefusedError(
    problems.length === 1 ? problems[0]! : `shard tables differ from what the copy writes (${problems.length} problems):\n  ${shown.join('\n  ')}${more}`,
    problems,
  );
}
