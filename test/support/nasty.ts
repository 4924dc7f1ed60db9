import type { Connection } from 'mysql2/promise';
import { connectMysql } from '../../src/mysql/connect.js';

/**
 * A legacy `member` table with the values that break copies: NULL vs '', 64-bit integers past
 * 2^53, DECIMAL(38,10), DATETIME(6), emoji, latin1 and gbk columns, bytes with tab/newline/NUL/
 * backslash, text with the same. Row i is deterministic so tests can regenerate and compare.
 */
export const MEMBER_DDL = `CREATE TABLE member (
  member_id BIGINT UNSIGNED NOT NULL,
  name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NULL,
  nick VARCHAR(40) CHARACTER SET latin1 COLLATE latin1_swedish_ci NULL,
  city VARCHAR(40) CHARACTER SET gbk COLLATE gbk_chinese_ci NULL,
  balance DECIMAL(38,10) NULL,
  points BIGINT NOT NULL,
  joined DATETIME(6) NULL,
  born DATE NULL,
  note TEXT NULL,
  avatar VARBINARY(32) NULL,
  PRIMARY KEY (member_id),
  KEY member_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;

const NAMES = ['张伟', '王芳', 'Zoë 😀', '', null, 'tab\there', 'new\nline', 'back\\slash', 'nul\u0000byte', "quote'\"", '\\N', 'Ω≈ç√', 'NULL', '"', '"\t""\n', 'ends in backslash\\'];
const NICKS = ['café', 'naïve', 'Ångström', '', null, 'plain', 'NULL', '"ô"\t'];
const CITIES = ['北京', '上海', '广州', '', null, '深圳市'];

export function memberId(i: number): string {
  // Spread ids across 64 bits, some past 2^53 and the top of BIGINT UNSIGNED.
  if (i === 0) return '18446744073709551615';
  if (i === 1) return '9007199254740993';
  return String(BigInt(i) * 7919n + (i % 3 === 0 ? 9007199254740000n : 0n));
}

export function memberRow(i: number): unknown[] {
  const bytes = Buffer.from([i & 0xff, 0x00, 0x09, 0x0a, 0x5c, 0x4e, 0xff, (i * 7) & 0xff]);
  return [
    memberId(i),
    NAMES[i % NAMES.length],
    NICKS[i % NICKS.length],
    CITIES[i % CITIES.length],
    i % 5 === 4 ? null : `${i % 2 ? '-' : ''}${'1234567890123456789012345678'.slice(0, 1 + (i % 28))}.${String(i * 37).padStart(10, '0').slice(0, 10)}`,
    String(i % 2 ? -(2n ** 63n) + BigInt(i) : 2n ** 63n - 1n - BigInt(i)),
    i % 7 === 6 ? null : `20${String(i % 30).padStart(2, '0')}-02-${String(1 + (i % 28)).padStart(2, '0')} 23:59:59.${String(i * 1013).padStart(6, '0').slice(-6)}`,
    i % 4 === 3 ? null : `19${String(50 + (i % 50))}-12-31`,
    i % 6 === 5 ? null : i % 6 === 4 ? '' : `note ${i}\t\\ \n end`,
    i % 8 === 7 ? null : i % 8 === 6 ? Buffer.alloc(0) : bytes,
  ];
}

export async function createMemberTable(url: string, rows: number, from = 0): Promise<void> {
  const conn = await connectMysql(url);
  try {
    await conn.query('DROP TABLE IF EXISTS member');
    await conn.query(MEMBER_DDL);
    await insertMembers(conn, from, rows);
  } finally {
    await conn.end();
  }
}

export async function insertMembers(conn: Connection, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(from + count, i + 500); j++) batch.push(memberRow(j));
    await conn.query('INSERT INTO member VALUES ?', [batch]);
  }
}

/** A second table with a composite primary key (member_id, tag) and a latin1 key column. */
export const TAG_DDL = `CREATE TABLE member_tag (
  member_id BIGINT NOT NULL,
  tag VARCHAR(16) CHARACTER SET latin1 COLLATE latin1_bin NOT NULL,
  weight DECIMAL(10,3) NULL,
  tagged_at DATETIME(3) NULL,
  PRIMARY KEY (member_id, tag)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;

const TAGS = ['vip', 'gold', 'café', 'Ærø', 'new'];

export function tagRow(i: number): unknown[] {
  return [String(Math.floor(i / 3) - 20), TAGS[i % TAGS.length]! + (i % 3 ? String(i % 3) : ''), i % 4 === 0 ? null : `${i}.${String(i % 1000).padStart(3, '0')}`, `2025-01-01 00:00:${String(i % 60).padStart(2, '0')}.${String(i % 1000).padStart(3, '0')}`];
}

export async function createTagTable(url: string, rows: number): Promise<void> {
  const conn = await connectMysql(url);
  try {
    await conn.query('DROP TABLE IF EXISTS member_tag');
    await conn.query(TAG_DDL);
    const batch = [];
    for (let i = 0; i < rows; i++) batch.push(tagRow(i));
    if (batch.length > 0) await conn.query('INSERT INTO member_tag VALUES ?', [batch]);
  } finally {
    await conn.end();
  }
}
