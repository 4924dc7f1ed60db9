import type { Finding, MysqlCheck } from './check.js';

/**
 * A shard server holding more shard tables than its table caches: every write to a table whose
 * definition was evicted opens it again (the .frm and the engine's dictionary). With 1,024 shards
 * on 2 servers and MariaDB's default table_definition_cache of 400, a 2M-row copy reopened table
 * definitions ~12,000 times per server. Only a warning: correctness does not depend on it.
 */
export function tableCacheFindings(caches: { tableDefinitionCache: number; tableOpenCache: number }, tables: number): Finding[] {
  const sizes: [string, number][] = [
    ['table_definition_cache', caches.tableDefinitionCache],
    ['table_open_cache', caches.tableOpenCache],
  ];
  // 0 or -1: sized by the server itself.
  return sizes
    .filter(([, size]) => size > 0 && size < tables)
    .map(([name, size]) => ({
      severity: 'warning',
      message: `${name} is ${size}: membermig writes ${tables} shard tables on this server; each write to a table that fell out of the cache opens it again. Set it to at least ${tables} plus the server's other tables`,
    }));
}

export const tableCacheCheck: MysqlCheck = {
  name: 'table-cache',
  appliesTo: ['shard'],
  async run({ conn, tables }) {
    if (!tables) return [];
    const [rows] = await conn.query('SELECT @@table_definition_cache AS defs, @@table_open_cache AS opens');
    const r = (rows as { defs: unknown; opens: unknown }[])[0]!;
    return tableCacheFindings({ tableDefinitionCache: Number(r.defs), tableOpenCache: Number(r.opens) }, tables);
  },
};
