import type { Pool } from 'mysql2/promise';
import type { Config } from '../../config/schema.js';
import { RefusedError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { TableSpec } from '../../rows/types.js';
import { createMssqlReader, type MssqlReader } from '../../source/mssql/index.js';
import { Lsn } from './lsn.js';
import { recopiedStartOf, recordedStarts, startLsnOf } from './position.js';
import { MssqlCdcSource, type ApplyChanges, type NewInstanceNotice } from './source.js';

export { Lsn } from './lsn.js';
export { MssqlCdcSource, type ApplyChanges, type NewInstanceNotice, type PollResult } from './source.js';
export { CdcWindowError, loadPosition, savePosition, recordedStarts, startLsnOf, readWindow, mssqlCdcStatus, type CdcPosition, type MssqlCdcInstanceStatus } from './position.js';
export { mapChanges, Operation } from './events.js';
export { CdcSchemaChangeError } from './ddl-history.js';

export interface MssqlCdcDeps {
  apply: ApplyChanges;
  logger: Logger;
  /** The control store pool (positions, dead letters, start positions). */
  control: Pool;
  /** The tables as described at the source (by logical name). */
  specs: Map<string, TableSpec>;
  /** Default: per table, the lowest start position recorded by the `membermig full` jobs that copied it. */
  startLsn?: Lsn | null;
  onNewInstance?: (notice: NewInstanceNotice) => void;
  batchRows?: number;
}

/**
 * Builds the direct CDC source from `cdc.mssql` (capture_instances, poll_interval_ms): checks each
 * capture instance against its table, and returns the source and its reader (one connection pool)
 * with a close() for them.
 */
export async function openMssqlCdcSource(config: Config, deps: MssqlCdcDeps): Promise<{ source: MssqlCdcSource; reader: MssqlReader; close(): Promise<void> }> {
  const cdc = config.cdc?.mssql;
  if (!cdc || Object.keys(cdc.capture_instances).length === 0) throw new RefusedError('cdc.mssql.capture_instances names no table');
  if (config.source.kind !== 'mssql') throw new RefusedError('cdc.mssql needs source.kind: mssql');
  const reader = createMssqlReader(config, deps.logger);
  try {
    const tables = [];
    for (const [name, instance] of Object.entries(cdc.capture_instances)) {
      const spec = deps.specs.get(name);
      if (!spec) throw new RefusedError(`cdc.mssql.capture_instances.${name}: no such table in tables`);
      tables.push({ name, instance, spec, excludedColumns: config.tables[name]?.exclude_columns ?? [] });
    }
    const starts = deps.startLsn !== undefined ? null : await recordedStarts(deps.control);
    const startOf = (table: string): Lsn | null => (starts ? startLsnOf(starts, table) : (deps.startLsn ?? null));
    const recopiedOf = (table: string): Lsn | null => (starts ? recopiedStartOf(starts, table) : null);
    const source = new MssqlCdcSource({
      source: await reader.connection(),
      control: deps.control,
      tables,
      apply: deps.apply,
      startLsnOf: startOf,
      recopiedStartOf: recopiedOf,
      logger: deps.logger,
      pollIntervalMs: cdc.poll_interval_ms,
      ...(deps.batchRows ? { batchRows: deps.batchRows } : {}),
      ...(deps.onNewInstance ? { onNewInstance: deps.onNewInstance } : {}),
    });
    await source.checkInstances();
    return { source, reader, close: () => reader.close() };
  } catch (e) {
    await reader.close();
    throw e;
  }
}
