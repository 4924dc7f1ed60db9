import type { Pool } from 'mysql2/promise';
import { coversLsn, loadPosition } from '../cdc/mssql/position.js';
import type { Lsn } from '../cdc/mssql/lsn.js';
import type { MssqlReader } from '../source/mssql/reader.js';
import type { ChangeSourceProbe } from './in-flight.js';

/**
 * SQL Server's CDC read directly (cdc.mssql): the source ends at sys.fn_cdc_get_max_lsn(), and
 * sync has applied it up to there once every capture instance's saved position covers that LSN.
 * A poll that finds nothing more saves its window's end, the max LSN, so an idle instance keeps
 * up with changes to other tables (src/cdc/mssql/source.ts).
 */
export class CaptureInstancesProbe implements ChangeSourceProbe<Lsn> {
  readonly name = 'SQL Server CDC';

  constructor(
    private readonly reader: Pick<MssqlReader, 'maxLsn'>,
    private readonly control: Pool,
    private readonly instances: string[],
  ) {}

  async end(): Promise<Lsn> {
    const max = await this.reader.maxLsn();
    if (!max) throw new Error('sys.fn_cdc_get_max_lsn() is NULL: CDC is not enabled on the source database');
    return max;
  }

  async behind(end: Lsn): Promise<string[]> {
    const behind: string[] = [];
    for (const instance of this.instances) {
      const position = await loadPosition(this.control, instance);
      if (!position || !coversLsn(position, end)) behind.push(`capture instance ${instance}`);
    }
    return behind;
  }

  /** The reader and the control store belong to verify, which closes them. */
  async close(): Promise<void> {}
}
