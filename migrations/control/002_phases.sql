-- State shared between phases: what verify found, what sync consumed and could not apply,
-- gray/shim settings with history, rows waiting for repair, values the target could not hold.
-- Several commands read these (status, gray gates, verify --repair), so their shape is a contract.

CREATE TABLE IF NOT EXISTS verify_runs (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  table_name VARCHAR(64) NOT NULL,
  scope JSON NULL COMMENT 'shards, sample, since: what this run covered',
  state VARCHAR(16) NOT NULL COMMENT 'running | clean | differences | failed',
  chunks_total INT UNSIGNED NOT NULL DEFAULT 0,
  chunks_checked INT UNSIGNED NOT NULL DEFAULT 0,
  rows_source BIGINT UNSIGNED NOT NULL DEFAULT 0,
  rows_target BIGINT UNSIGNED NOT NULL DEFAULT 0,
  differences INT UNSIGNED NOT NULL DEFAULT 0,
  repaired INT UNSIGNED NOT NULL DEFAULT 0,
  started_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  finished_at DATETIME(6) NULL,
  KEY verify_runs_table (table_name, finished_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS verify_diffs (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  run_id BIGINT UNSIGNED NOT NULL,
  table_name VARCHAR(64) NOT NULL,
  pk JSON NOT NULL COMMENT 'primary key values as text',
  shard INT UNSIGNED NULL COMMENT 'the shard the row was found in (or should be in)',
  kind VARCHAR(16) NOT NULL COMMENT 'missing | extra | different | wrong_shard',
  columns JSON NULL COMMENT 'for different: the columns that differ',
  detected_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  repaired_at DATETIME(6) NULL,
  repair_action VARCHAR(32) NULL COMMENT 'upsert | delete | move',
  KEY verify_diffs_run (run_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Keys that must be re-copied from the legacy side: a dual write whose second write failed,
-- or anything else that knows a row is out of step. verify --repair drains it.
CREATE TABLE IF NOT EXISTS repair_queue (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  table_name VARCHAR(64) NOT NULL,
  pk JSON NOT NULL,
  reason TEXT NOT NULL,
  origin VARCHAR(32) NOT NULL COMMENT 'shim | sync | verify',
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  resolved_at DATETIME(6) NULL,
  KEY repair_queue_open (table_name, resolved_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Kafka consumer positions, mirrored after the shard writes they cover are durable.
CREATE TABLE IF NOT EXISTS cdc_offsets (
  consumer_group VARCHAR(191) NOT NULL,
  topic VARCHAR(191) NOT NULL,
  partition_no INT UNSIGNED NOT NULL,
  next_offset BIGINT NOT NULL COMMENT 'the next offset to consume',
  high_watermark BIGINT NULL COMMENT 'the partition end seen at that time, for lag',
  last_source_ts_ms BIGINT NULL COMMENT 'source commit time of the last applied event',
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (consumer_group, topic, partition_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Change events that could not be decoded or applied: never applied, never silently skipped.
CREATE TABLE IF NOT EXISTS dead_letters (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  source VARCHAR(191) NOT NULL COMMENT 'kafka topic, or mssql capture instance',
  partition_no INT NULL,
  offset_no VARCHAR(40) NULL COMMENT 'Kafka offset, or LSN:seqval for direct CDC',
  table_name VARCHAR(64) NULL,
  message_key LONGBLOB NULL,
  raw_value LONGBLOB NULL,
  reason TEXT NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  retried_at DATETIME(6) NULL,
  resolved_at DATETIME(6) NULL,
  UNIQUE KEY dead_letters_position (source, partition_no, offset_no),
  KEY dead_letters_open (resolved_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Values the target cannot hold exactly (rows.on_unrepresentable: record).
CREATE TABLE IF NOT EXISTS rejected_values (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  job_id BIGINT UNSIGNED NULL,
  table_name VARCHAR(64) NOT NULL,
  pk JSON NOT NULL,
  column_name VARCHAR(64) NOT NULL,
  value TEXT NULL COMMENT 'the source value as text (hex for bytes)',
  reason TEXT NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY rejected_values_table (table_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Gray-release and shim settings per table; version bumps on every change so shims can poll cheaply.
CREATE TABLE IF NOT EXISTS settings (
  table_name VARCHAR(64) NOT NULL,
  kind VARCHAR(16) NOT NULL COMMENT 'shim | gray',
  value JSON NOT NULL,
  version BIGINT UNSIGNED NOT NULL,
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (table_name, kind)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS settings_history (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  table_name VARCHAR(64) NOT NULL,
  kind VARCHAR(16) NOT NULL,
  old_value JSON NULL,
  new_value JSON NOT NULL,
  operator VARCHAR(191) NOT NULL,
  reason TEXT NULL,
  forced TINYINT(1) NOT NULL DEFAULT 0,
  changed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY settings_history_table (table_name, kind, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row (id = 1): the version of all settings, bumped in the same transaction as any change.
CREATE TABLE IF NOT EXISTS settings_version (
  id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  version BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT IGNORE INTO settings_version (id, version) VALUES (1, 0);
