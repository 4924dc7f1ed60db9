import { describe, expect, it } from 'vitest';
import { readMigrations } from '../store/migrate.js';
import { controlStoreFindings } from './control-store.js';

describe('control store check', () => {
  const migrations = readMigrations();
  const ledger = migrations.map((m) => ({ version: m.version, name: m.name, checksum: m.checksum }));
  const latest = migrations.at(-1)!.version;

  it('passes a store migrated by this membermig, fully or in part (init goes on from there)', () => {
    expect(controlStoreFindings(ledger, migrations)).toEqual([]);
    expect(controlStoreFindings(ledger.slice(0, 2), migrations)).toEqual([]);
    expect(controlStoreFindings([], migrations)).toEqual([]);
  });

  it('refuses a store a newer membermig migrated, saying which version to run rather than "run init"', () => {
    const findings = controlStoreFindings([...ledger, { version: latest + 5, name: 'future', checksum: 'f'.repeat(64) }], migrations);
    expect(findings).toHaveLength(1);
    expect(findings[0]!.severity).toBe('error');
    expect(findings[0]!.message).toContain(`migration ${latest + 5}_future is applied in the control store but unknown to this membermig (it knows up to ${latest})`);
    expect(findings[0]!.message).toContain('a newer membermig migrated the store');
  });

  it('refuses a migration changed after it was applied, and one removed from this membermig', () => {
    const changed = ledger.map((r, i) => (i === 0 ? { ...r, checksum: '0'.repeat(64) } : r));
    expect(controlStoreFindings(changed, migrations).map((f) => f.message)).toEqual([`migration ${ledger[0]!.version}_${ledger[0]!.name} was changed after it was applied (checksum differs)`]);
    const removed = controlStoreFindings(ledger, migrations.slice(1));
    expect(removed.map((f) => f.message)).toEqual([`migration ${ledger[0]!.version}_${ledger[0]!.name} is applied in the control store but missing from this membermig`]);
  });
});
