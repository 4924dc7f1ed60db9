import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { formatPercent } from './percent.js';
import type { ShimMode } from './route.js';
import { readSettings, settingsOf } from './settings.js';

/** The gray/shim section of `membermig status`: per table, what services are told to do now. */
export interface GrayStatus {
  settingsVersion: number;
  tables: {
    table: string;
    mode: ShimMode;
    read: string;
    write: string;
    readBp: number;
    writeBp: number;
    allow: number;
    deny: number;
    updatedAt: string | null;
    /** Keys a shim queued because a second write failed, not yet repaired. */
    shimRepairsOpen: number;
  }[];
}

export async function collectGrayStatus(pool: Pool, config: Config): Promise<GrayStatus> {
  const snapshot = await readSettings(pool);
  const [repairs] = await pool.query<RowDataPacket[]>("SELECT table_name, COUNT(*) AS n FROM repair_queue WHERE origin = 'shim' AND resolved_at IS NULL GROUP BY table_name");
  const open = new Map(repairs.map((r) => [r.table_name as string, Number(r.n)]));
  return {
    settingsVersion: snapshot.version,
    tables: Object.keys(config.tables).map((table) => {
      const s = settingsOf(snapshot, table);
      return {
        table,
        mode: s.shim.mode,
        read: formatPercent(s.gray.read_bp),
        write: formatPercent(s.gray.write_bp),
        readBp: s.gray.read_bp,
        writeBp: s.gray.write_bp,
        allow: s.gray.allow.length,
        deny: s.gray.deny.length,
        updatedAt: s.updatedAt,
        shimRepairsOpen: open.get(table) ?? 0,
      };
    }),
  };
}
