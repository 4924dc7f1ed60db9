import { readVariables, type MysqlCheck } from './check.js';

/** SKIP LOCKED (chunk leases) needs MySQL 8.0 or MariaDB 10.6. */
export const versionCheck: MysqlCheck = {
  name: 'version',
  appliesTo: ['control', 'shard', 'source'],
  async run({ conn, role }) {
    const { version } = await readVariables(conn);
    const parsed = parseServerVersion(version);
    if (!parsed) return [{ severity: 'warning', message: `unrecognised server version "${version}"` }];
    const ok = parsed.mariadb ? atLeast(parsed, [10, 6]) : atLeast(parsed, [8, 0]);
    if (ok || role === 'source') return [];
    return [{ severity: 'error', message: `${version} is too old: membermig needs MySQL 8.0+ or MariaDB 10.6+ (SKIP LOCKED)` }];
  },
};

export interface ServerVersion {
  mariadb: boolean;
  major: number;
  minor: number;
}

export function parseServerVersion(version: string): ServerVersion | null {
  const m = /^(\d+)\.(\d+)/.exec(version);
  if (!m) return null;
  return { mariadb: /mariadb/i.test(version), major: Number(m[1]), minor: Number(m[2]) };
}

function atLeast(v: ServerVersion, [major, minor]: [number, number]): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}
