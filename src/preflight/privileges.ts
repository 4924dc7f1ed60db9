import type { RowDataPacket } from 'mysql2/promise';
import type { Finding, MysqlCheck, ServerRole } from './check.js';

/** What each account needs on its databases; `init` prints this list, and the README repeats it. */
export const requiredPrivileges: Record<ServerRole, string[]> = {
  control: ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'ALTER', 'INDEX'],
  shard: ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'ALTER', 'INDEX', 'DROP'],
  source: ['SELECT'],
};

/**
 * Global privileges, each satisfied by any one of its spellings. The source's: `full` reads the
 * binary log position sync starts from (SHOW MASTER STATUS), which MariaDB 10.5+ allows with
 * BINLOG MONITOR (REPLICATION CLIENT is its old name) or SUPER, and MySQL with REPLICATION CLIENT or SUPER.
 */
export const requiredGlobalPrivileges: Record<ServerRole, { anyOf: string[]; why: string }[]> = {
  control: [],
  shard: [],
  source: [{ anyOf: ['BINLOG MONITOR', 'REPLICATION CLIENT', 'SUPER'], why: "full reads the binary log position sync starts from" }],
};

/** For `init --help` and the README: what each account needs, global privileges included. */
export function describePrivileges(role: ServerRole): string {
  const global = requiredGlobalPrivileges[role].map((g) => `${g.anyOf.slice(0, 2).join(' or ')} on *.*`);
  return [requiredPrivileges[role].join(', '), ...global].join('; ');
}

/**
 * Reads SHOW GRANTS and checks each needed privilege is granted globally or on every database the
 * account must reach. Grants through roles are not expanded: those show up as a warning.
 */
export const privilegesCheck: MysqlCheck = {
  name: 'privileges',
  appliesTo: ['control', 'shard', 'source'],
  async run({ conn, role, databases }) {
    const [rows] = await conn.query<RowDataPacket[]>('SHOW GRANTS FOR CURRENT_USER()');
    const grants = rows.map((r) => String(Object.values(r)[0]));
    const needed = requiredPrivileges[role];
    const findings: Finding[] = missingOnDatabases(databases.map((db) => ({ db, missing: needed.filter((p) => !hasPrivilege(grants, p, db)) })));
    for (const global of requiredGlobalPrivileges[role]) {
      if (!global.anyOf.some((p) => hasPrivilege(grants, p, '*'))) {
        findings.push({ severity: 'error', message: `missing ${global.anyOf.slice(0, 2).join(' or ')} on *.* (${global.why})` });
      }
    }
    if (findings.length > 0 && grants.some((g) => /^GRANT\s+`?\w+`?\s+TO/i.test(g) && !/ON/i.test(g))) {
      findings.push({ severity: 'warning', message: 'the account has roles; privileges granted through roles were not expanded' });
    }
    return findings;
  },
};

/**
 * One finding per set of missing privileges, naming the databases it applies to: a shard server
 * holds hundreds of shard databases, and one line each buried the finding (and the log).
 */
export function missingOnDatabases(checked: { db: string; missing: string[] }[]): Finding[] {
  const byMissing = new Map<string, string[]>();
  for (const { db, missing } of checked) {
    if (missing.length === 0) continue;
    const key = missing.join(', ');
    byMissing.set(key, [...(byMissing.get(key) ?? []), db]);
  }
  const on = (db: string) => (db === '*' ? '*.*' : '`' + db + '`.*');
  return [...byMissing].map(([missing, dbs]) => ({
    severity: 'error' as const,
    message: `missing ${missing} on ${dbs.length === 1 ? on(dbs[0]!) : `${dbs.length} databases (${on(dbs[0]!)} … ${on(dbs[dbs.length - 1]!)})`}`,
  }));
}

interface ParsedGrant {
  privileges: string[];
  /** '*' for *.*, else the database name or LIKE pattern */
  database: string;
}

export function parseGrant(grant: string): ParsedGrant | null {
  const m = /^GRANT\s+(.+?)\s+ON\s+(?:TABLE\s+)?(\*|`(?:[^`]|``)*`|[\w$]+)\.(\*|`(?:[^`]|``)*`|[\w$]+)\s+TO\s/i.exec(grant);
  if (!m) return null;
  // Table-level grants do not cover creating the tables; only database- or global-level ones count.
  if (m[3] !== '*') return null;
  const privileges = m[1]!.split(',').map((p) => p.trim().replace(/\s*\(.*\)$/, '').toUpperCase());
  const db = m[2] === '*' ? '*' : m[2]!.replace(/^`|`$/g, '').replace(/``/g, '`');
  return { privileges, database: db };
}

export function hasPrivilege(grants: string[], privilege: string, database: string): boolean {
  return grants.some((g) => {
    const parsed = parseGrant(g);
    if (!parsed) return false;
    const coversDb = parsed.database === '*' || (database !== '*' && (parsed.database === database || likeMatches(parsed.database, database)));
    return coversDb && (parsed.privileges.includes('ALL PRIVILEGES') || parsed.privileges.includes('ALL') || parsed.privileges.includes(privilege));
  });
}

/** MySQL grant patterns: % and _ are wildcards, \_ and \% literal. */
function likeMatches(pattern: string, name: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) re += escapeRe(pattern[++i]!);
    else if (c === '%') re += '.*';
    else if (c === '_') re += '.';
    else re += escapeRe(c);
  }
  return new RegExp(re + '$').test(name);
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
