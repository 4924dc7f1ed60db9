import { readVariables, type Finding, type MysqlCheck } from './check.js';

/**
 * Server settings that can bend data. membermig sets its own session values (utf8mb4, UTC,
 * strict mode) and writes explicit charsets in its DDL, so these are warnings about what other
 * clients of the same servers would see, except strict mode on shard servers, which is required
 * of the server default so that no client of the shards can truncate silently.
 */
export const variablesCheck: MysqlCheck = {
  name: 'variables',
  appliesTo: ['control', 'shard'],
  async run({ conn, role }) {
    const v = await readVariables(conn);
    const findings: Finding[] = [];
    if (!v.character_set_server.startsWith('utf8mb4')) {
      findings.push({ severity: 'warning', message: `character_set_server is ${v.character_set_server}; membermig creates its databases as utf8mb4 explicitly` });
    }
    const tz = v.time_zone === 'SYSTEM' ? v.system_time_zone : v.time_zone;
    if (!['+00:00', 'UTC', 'Etc/UTC', 'GMT'].includes(tz)) {
      findings.push({ severity: 'warning', message: `time_zone is ${v.time_zone} (${tz}); membermig stores DATETIME values as given and uses UTC sessions` });
    }
    if (role === 'shard' && !/STRICT_(TRANS|ALL)_TABLES/.test(v.sql_mode)) {
      findings.push({ severity: 'error', message: `sql_mode "${v.sql_mode}" is not strict: set STRICT_TRANS_TABLES so a bad value fails instead of being truncated` });
    }
    return findings;
  },
};
