import type { Config } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import { createMssqlTypeMap } from '../../rows/mssql/typemap.js';
import type { TargetFlavor } from '../../rows/mssql/collation.js';
import { shardServerFlavor } from '../../target/flavor.js';
import { MssqlReader } from './reader.js';

export { MssqlReader, UnrepresentableValueError, buildTableSpec, readPlan, sourceTypeOf, type RejectedValue } from './reader.js';
export { mssqlConfig, openMssqlPool, describeMssqlUrl } from './connect.js';
export { checkMssqlSource, type MssqlPreflightReport } from './preflight.js';

export interface MssqlReaderExtras {
  /** Shard servers' family: only collation names in the DDL differ. Default: asked of the first shard server (else mysql). */
  targetFlavor?: TargetFlavor;
}

/**
 * The SQL Server SourceReader for `source.kind: mssql` (wired into src/source/index.ts by the factory).
 * Values the target cannot hold go to the caller (ReadRangeOptions.onRejected): copy records them.
 */
export function createMssqlReader(config: Config, logger: Logger, extras: MssqlReaderExtras = {}): MssqlReader {
  return new MssqlReader({
    url: config.source.url,
    connect: { tls: config.source.tls, trustServerCertificate: config.source.trust_server_certificate },
    logger,
    typeMap: createMssqlTypeMap({ flavor: extras.targetFlavor ?? 'mysql' }),
    describeTypeMap: async () => createMssqlTypeMap({ flavor: extras.targetFlavor ?? (await shardServerFlavor(config)) ?? 'mysql' }),
  });
}
