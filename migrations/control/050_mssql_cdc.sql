-- Direct SQL Server CDC (cdc.mssql): how far each capture instance has been applied.
-- last_seqval NULL: every change with __$start_lsn <= last_lsn is applied (the next read starts at
-- sys.fn_cdc_increment_lsn(last_lsn)); set: the source stopped inside the transaction last_lsn,
-- after the row with that __$seqval (and __$command_id when read from the change table, whose rows are
-- ordered by command id first). LSNs are 20 lower-case hex chars, so text order = LSN order.
-- Written only after the apply of the changes it covers resolved.
CREATE TABLE IF NOT EXISTS cdc_lsn_positions (
  capture_instance VARCHAR(128) NOT NULL PRIMARY KEY,
  table_name VARCHAR(64) NOT NULL COMMENT 'logical table name from the config',
  last_lsn CHAR(20) CHARACTER SET ascii NOT NULL,
  last_seqval CHAR(20) CHARACTER SET ascii NULL,
  last_command_id INT NULL,
  events_applied BIGINT UNSIGNED NOT NULL DEFAULT 0,
  last_source_ts_ms BIGINT NULL COMMENT 'source commit time of the last applied change, for lag',
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Direct CDC records a dead letter's position as `<20 hex lsn>:<20 hex seqval>` (41 chars), one more
-- than 002's VARCHAR(40) holds: widen it (same column, same meaning, nothing else changes).
ALTER TABLE dead_letters MODIFY offset_no VARCHAR(64) NULL COMMENT 'Kafka offset, or LSN:seqval for direct CDC';
