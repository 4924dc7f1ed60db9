import { describe, expect, it } from 'vitest';
import type { ColumnSpec, TableSpec } from '../../rows/types.js';
import { shardMapFromConfig } from '../../shard/map.js';
import { escapedInNode, tsvColumnExpression, tsvSelect } from './tsv.js';

const column = (source: string, dataType: string, nullable: boolean, extra: Partial<ColumnSpec> = {}): ColumnSpec => ({
  source,
  target: source,
  sourceType: { dataType, ...(extra.sourceType ?? {}) },
  targetType: dataType.toUpperCase(),
  nullable,
  ...(extra.wire ? { wire: extra.wire } : {}),
});

const spec = (columns: ColumnSpec[]): TableSpec => ({
  name: 'member',
  sourceSchema: 'legacy',
  sourceTable: 'member',
  target: 'member',
  columns,
  primaryKey: ['id'],
  shardKey: 'id',
  indexes: [],
});

const map = shardMapFromConfig({
  servers: { a: { primary: 'mysql://u@h/' } as never },
  shards: { count: 16, function: 'crc32', database: 'm_{shard}', placement: [{ shards: '0-15', server: 'a' }] },
});

describe('the columns of a bulk line as the MySQL source gives them', () => {
  it('sends text as it is, NULL included, for Node to escape; other NULLs as \\N', () => {
    const name = column('name', 'varchar', true, { sourceType: { dataType: 'varchar', charset: 'utf8mb4' } });
    expect(tsvColumnExpression(name)).toBe('`name`');
    expect(escapedInNode(name)).toBe(true);
    const born = column('born', 'date', true);
    expect(tsvColumnExpression(born)).toBe("IFNULL(`born`, X'5C4E')");
    expect(escapedInNode(born)).toBe(false);
  });

  it('converts text of another character set to UTF-8 first', () => {
    expect(tsvColumnExpression(column('nick', 'varchar', false, { sourceType: { dataType: 'varchar', charset: 'latin1' } }))).toBe('CONVERT(`nick` USING utf8mb4)');
  });

  it('leaves numbers and times as they are, and bytes as hex', () => {
    expect(tsvColumnExpression(column('points', 'int', false))).toBe('`points`');
    const avatar = column('avatar', 'varbinary', true, { wire: 'hex', sourceType: { dataType: 'varbinary' } });
    expect(tsvColumnExpression(avatar)).toBe("IF(`avatar` IS NULL, X'5C4E', HEX(`avatar`))");
    expect(escapedInNode(avatar)).toBe(false);
  });

  it('writes ZEROFILL numbers in plain digits and routes by the plain digits, as the shard map hashes them', () => {
    const zerofill = { sourceType: { dataType: 'int', columnType: 'int(8) unsigned zerofill' } };
    expect(tsvColumnExpression(column('id', 'int', false, zerofill))).toBe('(`id` + 0)');
    expect(tsvColumnExpression(column('balance', 'decimal', true, { sourceType: { dataType: 'decimal', columnType: 'decimal(10,2) unsigned zerofill' } }))).toBe(
      "IFNULL((`balance` + 0), X'5C4E')",
    );
    expect(tsvSelect(spec([column('id', 'int', false, zerofill)]), map).select).toMatch(/^\(CRC32\(\(`id` \+ 0\)\) % 16\) AS shard, /);
    const latin1Key = { ...spec([column('id', 'varchar', false, { sourceType: { dataType: 'varchar', charset: 'latin1' } })]) };
    expect(tsvSelect(latin1Key, map).select).toMatch(/^\(CRC32\(CONVERT\(`id` USING utf8mb4\)\) % 16\) AS shard, /);
  });

  it('asks for the convertible flag only where a value may not convert, right after the shard', () => {
    const utf8 = tsvSelect(spec([column('id', 'bigint', false), column('name', 'varchar', true, { sourceType: { dataType: 'varchar', charset: 'utf8mb4' } })]), map);
    expect(utf8.shardInSql).toBe(true);
    expect(utf8.flagged).toBe(false);
    expect(utf8.select).toBe('(CRC32(`id`) % 16) AS shard, `id`, `name`');
    expect(utf8.escaped).toEqual([false, true]);
    const latin1 = tsvSelect(spec([column('id', 'bigint', false), column('nick', 'varchar', true, { sourceType: { dataType: 'varchar', charset: 'latin1' } })]), map);
    expect(latin1.flagged).toBe(true);
    expect(latin1.select).toMatch(/^\(CRC32\(`id`\) % 16\) AS shard, \(\(`nick` IS NULL OR .*\)\) AS ok, `id`, CONVERT\(`nick` USING utf8mb4\)$/);
  });
});
