import type { Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scratchControlStore } from '../../test/support/scratch-control.js';
import { minimalConfig } from '../config/minimal.js';
import { createShim } from './index.js';

/**
 * An application's shim against a control store older than its library (an upgrade whose init has
 * not run) fails at start, saying so, instead of at its first repair-queue write; a store migrated
 * by a newer membermig does not stop an application that has not upgraded its library yet.
 */
describe('the shim and the control store version', () => {
  const scratch = scratchControlStore('shim_version');
  let pool: Pool;
  const config = () => ({ ...minimalConfig(4), control: { url: scratch.url } });
  beforeAll(async () => {
    pool = await scratch.open();
  });
  afterAll(async () => scratch.drop());

  it('refuses to start on a store not migrated to its version, naming init', async () => {
    const [rows] = await pool.query('SELECT version, name, checksum FROM schema_migrations ORDER BY version DESC LIMIT 1');
    const newest = (rows as { version: number; name: string; checksum: string }[])[0]!;
    await pool.query('DELETE FROM schema_migrations WHERE version = ?', [newest.version]);
    try {
      await expect(createShim({ config: config() })).rejects.toThrow(/control store .* is at schema \d+, this membermig needs \d+: run membermig init/);
    } finally {
      await pool.query('INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)', [newest.version, newest.name, newest.checksum]);
    }
  });

  it('starts on a store a newer membermig migrated further', async () => {
    await pool.query("INSERT INTO schema_migrations (version, name, checksum) VALUES (99999, 'from_the_future', REPEAT('0', 64))");
    try {
      const shim = await createShim({ config: config() });
      await shim.close();
    } finally {
      await pool.query('DELETE FROM schema_migrations WHERE version = 99999');
    }
  });
});
