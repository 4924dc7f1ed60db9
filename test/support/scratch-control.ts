import { randomBytes } from 'node:crypto';
import type { Pool } from 'mysql2/promise';
import { inject } from 'vitest';
import { connectMysql, createMysqlPool } from '../../src/mysql/connect.js';
import { setupControlStore } from '../../src/store/control.js';

/**
 * A migrated control store in a scratch database on the test MariaDB server, for tests of one
 * module against the real store: `open()` in beforeAll, `drop()` in afterAll.
 */
export function scratchControlStore(name: string): { url: string; open(): Promise<Pool>; drop(): Promise<void> } {
  const database = `membermig_${name}_${randomBytes(4).toString('hex')}`;
  const serverUrl = inject('mysql').legacy;
  const url = Object.assign(new URL(serverUrl), { pathname: `/${database}` }).toString();
  let pool: Pool | undefined;
  return {
    url,
    async open() {
      await setupControlStore({ control: { url } });
      return (pool = createMysqlPool(url));
    },
    async drop() {
      await pool?.end();
      const admin = await connectMysql(serverUrl);
      await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await admin.end();
    },
  };
}
