import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mysql2/promise';
import { describe, expect, inject, it } from 'vitest';
import { connectMysql } from '../mysql/connect.js';
import { CONTROL_MIGRATIONS_DIR, expectedObjects, migrate, NEWEST_KNOWN_MIGRATION, readMigrations, splitStatements, type Migration } from './migrate.js';

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

describe('what applied migrations leave in the store (checked against it: a table or column missing is refused)', () => {
  const migration = (version: number, sql: string): Migration => ({ version, name: `m${version}`, sql, checksum: '' });
  const keys = (migrations: Migration[]) => [...expectedObjects(migrations).keys()].sort();

  it('follows tables and columns through renames and drops to their last names', () => {
    const migrations = [
      migration(1, 'CREATE TABLE a (x INT); CREATE TABLE b (y INT); ALTER TABLE a ADD COLUMN c INT, ADD COLUMN d INT, ADD COLUMN e INT'),
      migration(2, 'ALTER TABLE a RENAME COLUMN c TO c2, CHANGE COLUMN d d2 BIGINT NULL; ALTER TABLE a CHANGE `e` `e2` INT'),
      migration(3, 'RENAME TABLE b TO b2; ALTER TABLE a RENAME TO a2'),
      migration(4, 'ALTER TABLE b2 ADD COLUMN z INT; ALTER TABLE a2 DROP COLUMN e2'),
    ];
    expect(keys(migrations)).toEqual(['a2', 'a2.c2', 'a2.d2', 'b2', 'b2.z']);
    expect(expectedObjects(migrations).get('a2.c2')!.migration.version).toBe(1);
  });

  it("the store's own migrations leave only names they create", () => {
    const all = keys(readMigrations());
    expect(all).toContain('chunks');
    expect(all.every((k) => /^\w+(\.\w+)?$/.test(k))).toBe(true);
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

describe('migrate on a real server: an error that says "already there" only where it can mean that', () => {
  /** Runs `work` with a connection (multiple statements) to a scratch database on the test server, dropped after. */
  async function inScratchDatabase(work: (conn: Connection) => Promise<void>): Promise<void> {
    const database = `membermig_migrate_${randomBytes(4).toString('hex')}`;
    const admin = await connectMysql(inject('mysql').legacy);
    await admin.query(`CREATE DATABASE \`${database}\``);
    const conn = await connectMysql(Object.assign(new URL(inject('mysql').legacy), { pathname: `/${database}` }).toString(), { multipleStatements: true });
    conn.on('error', () => undefined);
    try {
      await work(conn);
    } finally {
      await conn.end().catch(() => undefined);
      await admin.query(`DROP DATABASE \`${database}\``);
      await admin.end();
    }
  }
  const m = (version: number, name: string, sql: string) => ({ version, name, sql, checksum: String(version).repeat(64).slice(0, 64) });

  it('a unique key that duplicate rows keep from being added fails the migration; it is not recorded as applied', () =>
    inScratchDatabase(async (conn) => {
      await migrate(conn, [m(1, 'emails', "CREATE TABLE IF NOT EXISTS emails (id INT PRIMARY KEY, email VARCHAR(64)); INSERT INTO emails VALUES (1, 'a@x'), (2, 'a@x')")]);
      // ER_DUP_ENTRY here means the data does not allow the key, not that a crashed run added it.
      await expect(migrate(conn, [m(1, 'emails', "CREATE TABLE IF NOT EXISTS emails (id INT PRIMARY KEY, email VARCHAR(64)); INSERT INTO emails VALUES (1, 'a@x'), (2, 'a@x')"), m(2, 'unique_email', 'ALTER TABLE emails ADD UNIQUE KEY emails_email (email)')])).rejects.toThrow(/Duplicate entry/);
      const [ledger] = await conn.query('SELECT version FROM schema_migrations ORDER BY version');
      expect((ledger as { version: number }[]).map((r) => r.version)).toEqual([1]);
    }));

  it("a migration whose connection dies fails with the server's error, not with the lock release that follows it", () =>
    inScratchDatabase(async (conn) => {
      await expect(migrate(conn, [m(1, 'dies', 'KILL CONNECTION_ID()')])).rejects.toThrow(/Connection was killed|interrupted/i);
    }));
});
