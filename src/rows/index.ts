export * from './types.js';
export { mysqlTypeMap, targetCollationOf, isIntegerType, isTextType, isByteType } from './mysql.js';
export { targetDdl, columnDefinition, targetNameOf, keyPositions, shardKeyPosition } from './ddl.js';
export { convertRow, keyText, valueText, type RejectedValue, type ConvertedRow } from './convert.js';
