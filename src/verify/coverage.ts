/**
 * Which verify runs vouch for a whole table: the rule the gray gates and the records of re-created
 * shard tables (src/store/recreated-tables.ts) share.
 */

/**
 * Only a run that covered the whole table counts: a --shards, --sample or --since run can be clean
 * while the rest of the table is not. (A run without a recorded scope counts.)
 */
export const FULL_COVERAGE = `(scope IS NULL OR (JSON_UNQUOTE(JSON_EXTRACT(scope, '$.shards')) = 'all'
  AND COALESCE(JSON_TYPE(JSON_EXTRACT(scope, '$.sample')), 'NULL') = 'NULL'
  AND COALESCE(JSON_TYPE(JSON_EXTRACT(scope, '$.since')), 'NULL') = 'NULL'))`;

/**
 * When the newest clean verify of the whole table began (SQL). `table`: a parameter (one, the
 * table) or an outer query's column.
 */
export const lastCleanVerifyStart = (table = '?'): string =>
  `SELECT MAX(started_at) FROM verify_runs WHERE table_name = ${table} AND state = 'clean' AND finished_at IS NOT NULL AND ${FULL_COVERAGE}`;
