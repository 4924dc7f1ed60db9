import type { Connection } from 'mysql2/promise';

/** Which account a check is about: the control store, a shard server, or the legacy source. */
export type ServerRole = 'control' | 'shard' | 'source';

export interface Finding {
  severity: 'error' | 'warning';
  message: string;
}

export interface MysqlTarget {
  /** e.g. `control`, `server dc1-a`, `source` */
  label: string;
  role: ServerRole;
  conn: Connection;
  /** Databases this account must be able to create or write (patterns allowed, e.g. member\_%). */
  databases: string[];
  /** Shard servers: how many shard tables membermig writes there. */
  tables?: number;
  /** The legacy side: whether the config has a change source (cdc) that needs its change log. */
  changeCapture?: boolean;
}

/** One preflight check on a MySQL/MariaDB server; each lives in its own file beside its test. */
export interface MysqlCheck {
  name: string;
  appliesTo: ServerRole[];
  run(target: MysqlTarget): Promise<Finding[]>;
}

export interface ServerVariables {
  version: string;
  character_set_server: string;
  time_zone: string;
  system_time_zone: string;
  sql_mode: string;
  local_infile: string;
  log_bin: string;
  binlog_format: string;
  binlog_row_image: string;
}

export async function readVariables(conn: Connection): Promise<ServerVariables> {
  const [rows] = await conn.query(
    `SELECT @@version AS version, @@character_set_server AS character_set_server, @@time_zone AS time_zone,
            @@system_time_zone AS system_time_zone, @@sql_mode AS sql_mode, @@local_infile AS local_infile,
            @@log_bin AS log_bin, @@binlog_format AS binlog_format, @@binlog_row_image AS binlog_row_image`,
  );
  const r = (rows as Record<string, unknown>[])[0]!;
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)])) as unknown as ServerVariables;
}
