import { readVariables, type Finding, type MysqlCheck, type ServerVariables } from './check.js';

/**
 * A MySQL legacy side's binary log: `full` records its position as where change capture starts,
 * and Debezium reads it, row by row with whole images. Without it `full` recorded a null start
 * position and exited 0. An error when the config has a change source (cdc), else a warning.
 */
export const binlogCheck: MysqlCheck = {
  name: 'binlog',
  appliesTo: ['source'],
  async run({ conn, changeCapture }) {
    return binlogFindings(await readVariables(conn), changeCapture === true);
  },
};

export function binlogFindings(v: Pick<ServerVariables, 'log_bin' | 'binlog_format' | 'binlog_row_image'>, changeCapture: boolean): Finding[] {
  const severity = changeCapture ? 'error' : 'warning';
  const why = changeCapture ? 'change capture (cdc) reads it' : 'sync would have nothing to read';
  if (!['1', 'ON'].includes(v.log_bin.toUpperCase())) {
    return [{ severity, message: `the binary log is off (log_bin): full can record no start position, and ${why}; start the server with log_bin, binlog_format=ROW, binlog_row_image=FULL` }];
  }
  const findings: Finding[] = [];
  if (v.binlog_format.toUpperCase() !== 'ROW') findings.push({ severity, message: `binlog_format is ${v.binlog_format}: change capture needs ROW` });
  if (v.binlog_row_image.toUpperCase() !== 'FULL') findings.push({ severity, message: `binlog_row_image is ${v.binlog_row_image}: change capture needs FULL (whole before and after images)` });
  return findings;
}
