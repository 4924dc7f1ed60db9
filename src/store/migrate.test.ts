import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mysql2/promise';
import { describe, expect, inject, it } from 'vitest';
import { connectMysql } from '../mysql/connect.js';
import { CONTROL_MIGRATIONS_DIR, migrate, NEWEST_KNOWN_MIGRATION, readMigrations, splitStatements } from './migrate.js';

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
