import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONTROL_MIGRATIONS_DIR, NEWEST_KNOWN_MIGRATION, readMigrations, splitStatements } from './migrate.js';

describe('splitStatements', () => {
  it('splits at semicolons outside quotes and comments, and drops the comments', () => {
    const sql = "-- it's a comment; not a statement\nCREATE TABLE a (x INT COMMENT 'a; b -- c');\n/* block; */ INSERT INTO t VALUES ('it''s;', \"q;\", `c;`);\n\n";
    expect(splitStatements(sql)).toEqual(["CREATE TABLE a (x INT COMMENT 'a; b -- c')", "INSERT INTO t VALUES ('it''s;', \"q;\", `c;`)"]);
  });

  it('gives every control-store migration as whole statements', () => {
    for (const m of readMigrations()) {
      const statements = splitStatements(m.sql);
      expect(statements.length, m.name).toBeGreaterThan(0);
      for (const s of statements) expect(s, m.name).toMatch(/^(CREATE|ALTER|INSERT|UPDATE|DELETE|DROP|SET|START TRANSACTION|COMMIT)\b/i);
    }
  });
});

describe('migrations newer than the code', () => {
  it('the code knows the newest migration file (raise NEWEST_KNOWN_MIGRATION with each new one)', () => {
    expect(Math.max(...readMigrations().map((m) => m.version))).toBe(NEWEST_KNOWN_MIGRATION);
  });

  it('refuses a migration file newer than the code knows: a build older than its migrations must not apply it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'membermig-migrations-'));
    try {
      for (const f of readdirSync(CONTROL_MIGRATIONS_DIR)) copyFileSync(join(CONTROL_MIGRATIONS_DIR, f), join(dir, f));
      writeFileSync(join(dir, `${NEWEST_KNOWN_MIGRATION + 10}_from_the_future.sql`), 'CREATE TABLE IF NOT EXISTS future (id INT);');
      expect(() => readMigrations(dir)).toThrow(/_from_the_future\.sql is newer than this build of membermig knows .*build it again \(npm run build\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
