export { createShardWriter, upsertSql, loadDataSql, WRITER_SESSION, type ShardWriter, type ShardWriterOptions } from './writer.js';
export { planShardTables, createShardTables, type ShardTablesPlan, type ShardTablesResult } from './tables.js';
export { shapeProblems, normalizeType, readExistingTables } from './shape.js';
