-- Jobs, chunk checkpoints with leases, and the CDC start position: shared by full, verify and sync.

CREATE TABLE IF NOT EXISTS jobs (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind VARCHAR(16) NOT NULL COMMENT 'full | verify | sync',
  name VARCHAR(191) NOT NULL COMMENT 'unique per kind while active, e.g. the table list',
  state VARCHAR(16) NOT NULL COMMENT 'planning | running | done | failed | abandoned',
  options JSON NULL COMMENT 'what the job was started with (never secrets)',
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  finished_at DATETIME(6) NULL,
  KEY jobs_kind_state (kind, state)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per primary-key range of one table. lower_key is exclusive (NULL = from the start),
-- upper_key inclusive (NULL = to the end); keys are JSON arrays of the key columns' text values.
CREATE TABLE IF NOT EXISTS chunks (
  job_id BIGINT UNSIGNED NOT NULL,
  table_name VARCHAR(64) NOT NULL,
  chunk_no INT UNSIGNED NOT NULL,
  lower_key JSON NULL,
  upper_key JSON NULL,
  state VARCHAR(16) NOT NULL DEFAULT 'pending' COMMENT 'pending | leased | done | failed',
  lease_owner VARCHAR(191) NULL,
  lease_until DATETIME(6) NULL,
  attempts INT UNSIGNED NOT NULL DEFAULT 0,
  rows_done BIGINT UNSIGNED NULL,
  result JSON NULL,
  last_error TEXT NULL,
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (job_id, table_name, chunk_no),
  KEY chunks_claim (job_id, state, lease_until)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Processes working on a job, for status ("active workers") and for lease owners' identity.
CREATE TABLE IF NOT EXISTS workers (
  id VARCHAR(191) NOT NULL PRIMARY KEY COMMENT 'host:pid:random',
  job_id BIGINT UNSIGNED NULL,
  command VARCHAR(32) NOT NULL,
  host VARCHAR(255) NOT NULL,
  pid INT UNSIGNED NOT NULL,
  started_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  heartbeat_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY workers_job (job_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Where change capture must start so that replay converges with the copy (design.md, consistency model).
-- source_kind: mssql (position = {"lsn": "20 hex chars"}), mysql ({"file","pos","gtid"}), kafka ({"topic","offsets":{partition: offset}}).
CREATE TABLE IF NOT EXISTS cdc_start_positions (
  job_id BIGINT UNSIGNED NOT NULL,
  source_kind VARCHAR(16) NOT NULL,
  position JSON NOT NULL,
  recorded_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (job_id, source_kind)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
