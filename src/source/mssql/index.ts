import type { Config } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import { createMssqlTypeMap } from '../../rows/mssql/typemap.js';
import type { TargetFlavor } from '../../rows/mssql/collation.js';
import { openControlStore } from '../../store/control.js';
import { shardServerFlavor } from '../../target/flavor.js';
import { MssqlReader, type RejectedValue } from './reader.js';

export { MssqlReader, UnrepresentableValueError, buildTableSpec, readPlan, sourceTypeOf, type RejectedValue } from './reader.js';
export { mssqlConfig, openMssqlPool, describeMssqlUrl } from './connect.js';
export { checkMssqlSource, type MssqlPreflightReport } from './preflight.js';

export interface MssqlReaderExtras {
  /** Where rejected values go with rows.on_unrepresentable: record; default: the control store's rejected_values. */
  recordRejected?: (rejected: RejectedValue) => Promise<void>;
  jobId?: number;
  /** Shard servers' family: only collation names in the DDL differ. Default: asked of the first shard server (else mysql). */
  targetFlavor?: TargetFlavor;
}

/** The SQL Server SourceReader for `source.kind: mssql` (wired into src/source/index.ts by the factory). */
export function createMssqlReader(config: Config, logger: Logger, extras: MssqlReaderExtras = {}): MssqlReader {
  const onUnrepresentable = config.rows.on_unrepresentable;
  const sink = onUnrepresentable === 'record' && !extras.recordRejected ? recordInControlStore(config, extras.jobId) : null;
  const recordRejected = onUnrepresentable === 'record' ? (extras.recordRejected ?? sink!.record) : undefined;
  return new MssqlReader({
    url: config.source.url,
    connect: { tls: config.source.tls, trustServerCertificate: config.source.trust_server_certificate },
    logger,
    typeMap: createMssqlTypeMap({ flavor: extras.targetFlavor ?? 'mysql' }),
    describeTypeMap: async () => createMssqlTypeMap({ flavor: extras.targetFlavor ?? (await shardServerFlavor(config)) ?? 'mysql' }),
    onUnrepresentable,
    ...(recordRejected ? { recordRejected } : {}),
    ...(sink ? { onClose: sink.close } : {}),
  });
}

function recordInControlStore(config: Config, jobId: number | undefined) {
  let store: ReturnType<typeof openControlStore> | null = null;
  const close = async () => {
    await store?.close();
    store = null;
  };
  const record = async (r: RejectedValue) => {
    store ??= openControlStore(config, 1);
    await store.pool.query('INSERT INTO rejected_values (job_id, table_name, pk, column_name, value, reason) VALUES (?, ?, ?, ?, ?, ?)', [
      jobId ?? null,
      r.table,
      JSON.stringify(r.key),
      r.column,
      r.value,
      r.reason,
    ]);
  };
  return { record, close };
}
