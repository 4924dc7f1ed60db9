import type { Connection, RowDataPacket } from 'mysql2/promise';
import { RefusedError } from '../errors.js';
import type { ColumnSpec, TableSpec } from '../rows/types.js';

/**
 * Checks that an existing shard table has the shape the row pipeline writes: the same columns
 * in the same order with the same types, nullability and text collations, and the same primary
 * key. Returns the problems found, each naming database, table and column.
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
}

/** Reads the columns and primary keys of the given tables in the given databases on one server. */
export async function readExistingTables(conn: Connection, databases: string[], tables: string[]): Promise<ExistingTables> {
  const columns = new Map<string, ColumnRow[]>();
  const primaryKeys = new Map<string, string[]>();
  if (databases.length === 0 || tables.length === 0) return { columns, primaryKeys };
  const [rows] = await conn.query<ColumnRow[]>(
    `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, COLUMN_NAME AS name, COLUMN_TYPE AS column_type, IS_NULLABLE AS nullable,
            COLLATION_NAME AS collation, COLUMN_KEY AS column_key
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN (?) AND TABLE_NAME IN (?) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
    [databases, tables],
  );
  for (const r of rows) {
    const key = `${r.db}.${r.tbl}`;
    columns.set(key, [...(columns.get(key) ?? []), r]);
  }
  const [keys] = await conn.query<RowDataPacket[]>(
    `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, COLUMN_NAME AS name FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA IN (?) AND TABLE_NAME IN (?) AND INDEX_NAME = 'PRIMARY' ORDER BY TABLE_SCHEMA, TABLE_NAME, SEQ_IN_INDEX`,
    [databases, tables],
  );
  for (const k of keys) {
    const key = `${k.db}.${k.tbl}`;
    primaryKeys.set(key, [...(primaryKeys.get(key) ?? []), k.name]);
  }
  return { columns, primaryKeys };
}

/** Integer display widths and spacing differ between servers and versions; JSON is LONGTEXT on MariaDB. */
export function normalizeType(type: string): string {
  const t = type.toLowerCase().replace(/\s+/g, ' ').trim();
  const noWidth = t.replace(/^(tinyint|smallint|mediumint|int|integer|bigint|year)\(\d+\)/, '$1').replace(/^integer/, 'int');
  return noWidth === 'json' ? 'longtext' : noWidth;
}

export function shapeProblems(database: string, spec: TableSpec, existing: ColumnRow[], primaryKey: string[]): string[] {
  const where = `table ${spec.name}: shard table ${database}.${spec.target}`;
  const problems: string[] = [];
  const byName = new Map(existing.map((c) => [c.name, c]));
  spec.columns.forEach((c: ColumnSpec, i) => {
    const found = byName.get(c.target);
    if (!found) return problems.push(`${where} has no column ${c.target} (expected ${c.targetType})`);
    if (normalizeType(found.column_type) !== normalizeType(c.targetType)) {
      problems.push(`${where} column ${c.target} is ${found.column_type}, expected ${c.targetType}`);
    }
    if ((found.nullable === 'YES') !== c.nullable) problems.push(`${where} column ${c.target} is ${found.nullable === 'YES' ? 'NULL' : 'NOT NULL'}, expected ${c.nullable ? 'NULL' : 'NOT NULL'}`);
    if (c.targetCollation && found.collation !== c.targetCollation) {
      problems.push(`${where} column ${c.target} has collation ${found.collation}, expected ${c.targetCollation}`);
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

export function refuseShapeProblems(problems: string[]): void {
  if (problems.length === 0) return;
  const shown = problems.slice(0, 20);
  const more = problems.length > shown.length ? `\n  ... and ${problems.length - shown.length} more` : '';
  throw new RefusedError(
    problems.length === 1 ? problems[0]! : `${problems.length} shard tables differ from what the copy writes:\n  ${shown.join('\n  ')}${more}`,
    problems,
  );
}
