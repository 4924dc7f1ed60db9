import { describe, expect, it } from 'vitest';
import { describePrivileges, hasPrivilege, missingOnDatabases, parseGrant } from './privileges.js';

describe('grant parsing', () => {
  it('reads global, database and pattern grants', () => {
    expect(parseGrant('GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION')).toEqual({ privileges: ['ALL PRIVILEGES'], database: '*' });
    expect(parseGrant('GRANT SELECT, INSERT ON `member\\_%`.* TO `app`@`%`')).toEqual({ privileges: ['SELECT', 'INSERT'], database: 'member\\_%' });
    expect(parseGrant('GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD \'*ABC\'')).toEqual({ privileges: ['USAGE'], database: '*' });
    // A table-level grant cannot create the table, so it does not count.
    expect(parseGrant('GRANT SELECT ON `db`.`t` TO `app`@`%`')).toBeNull();
  });

  it('matches database patterns with escaped underscores', () => {
    const grants = ['GRANT USAGE ON *.* TO `app`@`%`', 'GRANT SELECT, INSERT, UPDATE ON `member\\_%`.* TO `app`@`%`'];
    expect(hasPrivilege(grants, 'SELECT', 'member_0001')).toBe(true);
    expect(hasPrivilege(grants, 'SELECT', 'memberX0001')).toBe(false);
    expect(hasPrivilege(grants, 'DELETE', 'member_0001')).toBe(false);
    expect(hasPrivilege(['GRANT ALL PRIVILEGES ON `c`.* TO `x`@`%`'], 'CREATE', 'c')).toBe(true);
  });

  it('a global privilege is granted on *.* only, not by a pattern grant that happens to match "*"', () => {
    expect(hasPrivilege(['GRANT BINLOG MONITOR ON *.* TO `app`@`%`'], 'BINLOG MONITOR', '*')).toBe(true);
    expect(hasPrivilege(['GRANT ALL PRIVILEGES ON `%`.* TO `app`@`%`'], 'BINLOG MONITOR', '*')).toBe(false);
    expect(describePrivileges('source')).toBe('SELECT; BINLOG MONITOR or REPLICATION CLIENT on *.*');
  });

  it('a privilege missing on many shard databases is one finding naming how many and the first and last', () => {
    const dbs = Array.from({ length: 512 }, (_, i) => `member_${String(i).padStart(3, '0')}`);
    const findings = missingOnDatabases([{ db: 'membermig_control', missing: [] }, ...dbs.map((db) => ({ db, missing: ['DROP'] }))]);
    expect(findings).toEqual([{ severity: 'error', message: 'missing DROP on 512 databases (`member_000`.* … `member_511`.*)' }]);
    expect(missingOnDatabases([{ db: 'a', missing: ['INSERT', 'DELETE'] }, { db: 'b', missing: ['DROP'] }]).map((f) => f.message)).toEqual(['missing INSERT, DELETE on `a`.*', 'missing DROP on `b`.*']);
  });
});
