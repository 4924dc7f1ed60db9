import { describe, expect, it } from 'vitest';
import { readMigrations, splitStatements } from './migrate.js';

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
