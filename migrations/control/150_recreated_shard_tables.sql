-- Shard tables `init` created for a table a full copy had already copied or was copying (dropped
-- since, say): they are empty, and no job copies into them again by itself. Recorded before the
-- table is created, so neither a kill in between nor the next init loses it (the warning was only
-- printed once, and a second init said all was in place). init and status report each row until
-- a clean verify of the whole table begins after it (src/store/recreated-tables.ts).
CREATE TABLE IF NOT EXISTS recreated_shard_tables (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  table_name VARCHAR(64) NOT NULL COMMENT 'the logical table (tables.<name> of the config)',
  shard_database VARCHAR(64) NOT NULL,
  job_id BIGINT UNSIGNED NOT NULL COMMENT 'the newest full copy job of the table then',
  job_state VARCHAR(16) NOT NULL COMMENT 'that job''s state then',
  recorded_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) COMMENT 'just before init created the table',
  KEY recreated_by_table (table_name, recorded_at)
) ENGINE=InnoDB;
