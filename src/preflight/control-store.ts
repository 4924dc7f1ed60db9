import { ledgerProblems, missingObjectProblems, readLedger, readMigrations, type Migration } from '../store/migrate.js';
import type { Finding, MysqlCheck } from './check.js';

/**
 * A control store this membermig cannot use: migrated by a newer membermig, or a migration changed
 * after it was applied. `init` would refuse it when migrating; checked here too so that
 * `init --check` says so before a cutover step relies on it.
 */
export function controlStoreFindings(ledger: { version: number; name: string; checksum: string }[], migrations: Migration[]): Finding[] {
  return ledgerProblems(ledger, migrations).map((message) => ({ severity: 'error', message }));
}

export const controlStoreCheck: MysqlCheck = {
  name: 'control-store',
  appliesTo: ['control'],
  async run({ conn, databases }) {
    const database = databases[0];
    if (!database) return [];
    const ledger = (await readLedger(conn, database)) ?? [];
    const migrations = readMigrations();
    // Tables and columns an applied migration made that are gone: init would skip it, and every command fail.
    const missing = (await missingObjectProblems(conn, database, ledger, migrations)).map((message): Finding => ({ severity: 'error', message }));
    return [...controlStoreFindings(ledger, migrations), ...missing];
  },
};
