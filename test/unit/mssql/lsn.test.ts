import { describe, expect, it } from 'vitest';
import { Lsn } from '../../../src/cdc/mssql/lsn.js';

describe('Lsn', () => {
  const bytes = Buffer.from('0000002b00000c480003', 'hex');

  it('parses tedious Buffer(10), 20 hex chars, 0x-prefixed hex and the Debezium form to the same LSN', () => {
    const forms = [Lsn.parse(bytes), Lsn.parse('0000002b00000c480003'), Lsn.parse('0x0000002B00000C480003'), Lsn.parse('0000002b:00000c48:0003')];
    for (const l of forms) {
      expect(l.toString()).toBe('0000002b00000c480003');
      expect(l.toDebezium()).toBe('0000002b:00000c48:0003');
      expect(l.toBuffer().equals(bytes)).toBe(true);
      expect(l.equals(forms[0]!)).toBe(true);
    }
    expect(JSON.stringify({ lsn: forms[0] })).toBe('{"lsn":"0000002b00000c480003"}');
  });

  it('refuses wrong lengths and shapes', () => {
    expect(() => Lsn.parse(Buffer.alloc(9))).toThrow(/10 bytes, got 9/);
    expect(() => Lsn.parse('0000002b00000c48000')).toThrow(/not an LSN/);
    expect(() => Lsn.parse('0000002b:00000c48:003')).toThrow(/not an LSN/);
    expect(() => Lsn.parse('zz00002b00000c480003')).toThrow(/not an LSN/);
  });

  it('compares as unsigned big-endian bytes, so a high bit is larger, not negative', () => {
    const small = Lsn.parse('7fffffffffffffffffff');
    const big = Lsn.parse('80000000000000000000');
    expect(small.compare(big)).toBe(-1);
    expect(big.compare(small)).toBe(1);
    expect(Lsn.parse('0000002b00000d200005').compare(Lsn.parse('0000002b00000c480003'))).toBe(1);
    // the block is more significant than the slot
    expect(Lsn.parse('0000002b:00000c49:0000').compare(Lsn.parse('0000002b:00000c48:ffff'))).toBe(1);
    expect(Lsn.max(small, big)).toBe(big);
  });

  it('string order equals LSN order (fixed width, lower-case)', () => {
    const lsns = ['0000002b00000c480003', '0000002b00000d200002', '000000ff000000000000', '00000100000000000000'].map((s) => Lsn.parse(s));
    const byString = [...lsns].sort((a, b) => (a.toString() < b.toString() ? -1 : 1));
    const byLsn = [...lsns].sort((a, b) => a.compare(b));
    expect(byString.map(String)).toEqual(byLsn.map(String));
  });

  it('increments like sys.fn_cdc_increment_lsn, carrying across bytes', () => {
    expect(Lsn.parse('0000002b00000c480003').increment().toString()).toBe('0000002b00000c480004');
    expect(Lsn.parse('0000002b00000c48ffff').increment().toString()).toBe('0000002b00000c490000');
    expect(Lsn.parse('000000ffffffffffffff').increment().toString()).toBe('00000100000000000000');
    expect(() => Lsn.parse('ffffffffffffffffffff').increment()).toThrow(/largest LSN/);
    const l = Lsn.parse(bytes);
    l.increment();
    expect(l.toString()).toBe('0000002b00000c480003'); // immutable
  });

  it('decrements like sys.fn_cdc_decrement_lsn, borrowing across bytes: the last LSN before a schema change', () => {
    expect(Lsn.parse('0000002b00000c480003').decrement().toString()).toBe('0000002b00000c480002');
    expect(Lsn.parse('0000002b00000c490000').decrement().toString()).toBe('0000002b00000c48ffff');
    expect(Lsn.parse('00000100000000000000').decrement().toString()).toBe('000000ffffffffffffff');
    expect(() => Lsn.ZERO.decrement()).toThrow(/decrement the LSN 0{20}/);
    const l = Lsn.parse(bytes);
    expect(l.decrement().increment().equals(l)).toBe(true);
    expect(l.toString()).toBe('0000002b00000c480003'); // immutable
  });

  it('knows the all-zero LSN that fn_cdc_get_min_lsn returns for a missing instance', () => {
    expect(Lsn.ZERO.isZero()).toBe(true);
    expect(Lsn.parse('00000000000000000000').isZero()).toBe(true);
    expect(Lsn.parse('00000000000000000001').isZero()).toBe(false);
  });

  it('copies the input buffer, so a reused driver buffer cannot change it', () => {
    const b = Buffer.from(bytes);
    const l = Lsn.parse(b);
    b.fill(0);
    expect(l.toString()).toBe('0000002b00000c480003');
  });
});
