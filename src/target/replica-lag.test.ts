import { describe, expect, it } from 'vitest';
import { lagAllowsWrites, lagOfStatus } from './replica-lag.js';

/** SHOW REPLICA STATUS rows as MariaDB 10.11 and MySQL 8 name their columns. */
describe('lagOfStatus', () => {
  const mariadb = { Slave_IO_Running: 'Yes', Slave_SQL_Running: 'Yes', Seconds_Behind_Master: '7', Last_SQL_Error: '' };
  const mysql8 = { Replica_IO_Running: 'Yes', Replica_SQL_Running: 'Yes', Seconds_Behind_Source: 3 };

  it("reads MariaDB's and MySQL's names for the lag", () => {
    expect(lagOfStatus(mariadb)).toEqual({ seconds: 7 });
    expect(lagOfStatus(mysql8)).toEqual({ seconds: 3 });
  });

  it('takes replication that is stopped, connecting or silent for an unknown lag, saying why', () => {
    expect(lagOfStatus({ ...mariadb, Slave_SQL_Running: 'No', Last_SQL_Error: 'Duplicate entry' })).toEqual({
      seconds: null,
      why: 'its replication SQL thread is not running: Duplicate entry',
    });
    expect(lagOfStatus({ ...mysql8, Replica_IO_Running: 'Connecting' })).toEqual({ seconds: null, why: 'its replication IO thread is still connecting' });
    expect(lagOfStatus({ ...mariadb, Seconds_Behind_Master: null })).toEqual({ seconds: null, why: 'it does not say how far behind it is' });
    expect(lagOfStatus(undefined).why).toMatch(/^it is not a replica/);
  });

  it('lets writes go on only at a known lag within the limit', () => {
    expect(lagAllowsWrites({ replica: 'r', seconds: 10 }, 10)).toBe(true);
    expect(lagAllowsWrites({ replica: 'r', seconds: 11 }, 10)).toBe(false);
    expect(lagAllowsWrites({ replica: 'r', seconds: null, why: 'x' }, 10)).toBe(false);
  });
});
