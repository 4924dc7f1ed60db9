import { describe, expect, it } from 'vitest';
import type { TableSpec } from '../rows/types.js';
import { orderingStamp, upsertSql } from './writer.js';

const spec = (stampType: string): TableSpec => ({
  name: 'member',
  sourceSchema: 'legacy',
  sourceTable: 'member',
  target: 'member',
  primaryKey: ['id'],
  shardKey: 'id',
  updatedAt: 'changed',
  columns: [
    { source: 'id', target: 'id', sourceType: { dataType: 'bigint' }, targetType: 'BIGINT', nullable: false },
    { source: 'changed', target: 'changed_at', sourceType: { dataType: 'x' }, targetType: stampType, nullable: true },
    { source: 'name', target: 'name', sourceType: { dataType: 'varchar' }, targetType: 'VARCHAR(10)', nullable: true },
  ],
});

describe('upsert that keeps a newer row (sync)', () => {
  it('keeps each column when the incoming updated_at is older, and assigns updated_at last (MySQL assigns left to right)', () => {
    const sql = upsertSql('`s`.`member`', spec('DATETIME(6)'), 1, { keepNewer: true });
    expect(sql).toBe(
      'INSERT INTO `s`.`member` (`id`, `changed_at`, `name`) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE ' +
        '`name` = IF(VALUES(`changed_at`) < `changed_at`, `name`, VALUES(`name`)), `changed_at` = IF(VALUES(`changed_at`) < `changed_at`, `changed_at`, VALUES(`changed_at`))',
    );
    expect(upsertSql('t', spec('DATETIME(6)'), 1)).toContain('ON DUPLICATE KEY UPDATE `changed_at` = VALUES(`changed_at`), `name` = VALUES(`name`)');
  });

  it('orders only by a stamp whose shard type sorts by time: not text (a datetimeoffset is kept as text with its offset)', () => {
    for (const type of ['DATETIME(6)', 'TIMESTAMP(3)', 'DATE', 'BIGINT UNSIGNED', 'int']) expect(orderingStamp(spec(type))?.target, type).toBe('changed_at');
    for (const type of ['VARCHAR(34) CHARACTER SET ascii COLLATE ascii_bin', 'CHAR(20)', 'DECIMAL(20,6)']) expect(orderingStamp(spec(type)), type).toBeUndefined();
    expect(upsertSql('t', spec('VARCHAR(34)'), 1, { keepNewer: true })).not.toContain('IF(');
  });
});
