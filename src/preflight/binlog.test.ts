import { describe, expect, it } from 'vitest';
import { binlogFindings } from './binlog.js';

describe('binlog check (a MySQL legacy side)', () => {
  const on = { log_bin: '1', binlog_format: 'ROW', binlog_row_image: 'FULL' };

  it('passes a binary log in ROW format with full images', () => {
    expect(binlogFindings(on, true)).toEqual([]);
  });

  it('refuses a log that is off, or not ROW/FULL, when the config has a change source; warns without one', () => {
    const off = binlogFindings({ ...on, log_bin: '0' }, true);
    expect(off).toEqual([{ severity: 'error', message: expect.stringContaining('the binary log is off (log_bin): full can record no start position') }]);
    expect(binlogFindings({ ...on, log_bin: 'OFF' }, false)).toEqual([{ severity: 'warning', message: expect.stringContaining('sync would have nothing to read') }]);
    expect(binlogFindings({ ...on, binlog_format: 'MIXED', binlog_row_image: 'MINIMAL' }, true).map((f) => [f.severity, f.message.split(':')[0]])).toEqual([
      ['error', 'binlog_format is MIXED'],
      ['error', 'binlog_row_image is MINIMAL'],
    ]);
  });
});
