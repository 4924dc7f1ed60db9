-- sync: how many events each partition's applied batches held, for status and throughput.
ALTER TABLE cdc_offsets
  ADD COLUMN applied_events BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'change events applied from this partition (replays count again)';
